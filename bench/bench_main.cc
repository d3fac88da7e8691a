/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* main() and the shared helpers of every libvmres benchmark binary. */
#include "bench_common.h"

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace vb
{

static options g_opts;

const options &opts()
{
	return g_opts;
}

namespace
{
struct thread_registration {
	bool active = false;
	~thread_registration()
	{
		if (active)
			vmres_thread_unregister();
	}
};
thread_local thread_registration tls_registration;
} // namespace

void ensure_registered()
{
	if (!tls_registration.active) {
		vmres_thread_register();
		tls_registration.active = true;
	}
}

void unregister_now()
{
	if (tls_registration.active) {
		vmres_thread_unregister();
		tls_registration.active = false;
	}
}

void thread_sweep(benchmark::internal::Benchmark *b)
{
	for (int t = 1; t <= g_opts.max_threads; t *= 2)
		b->Threads(t);
	b->UseRealTime();
}

void thread_sweep_windowed(benchmark::internal::Benchmark *b)
{
	for (int t = 1; t <= g_opts.max_threads; t *= 2)
		b->Threads(t);
	b->UseManualTime()->Iterations(1);
}

static void *count_alloc(void *ctx, size_t size)
{
	auto *c = static_cast<counting_mem *>(ctx);
	void *p = std::malloc(size);
	if (p) {
		/* relaxed: statistics, read after rcu_barrier and joins */
		c->bytes.fetch_add((int64_t)size, std::memory_order_relaxed);
		c->blocks.fetch_add(1, std::memory_order_relaxed);
	}
	return p;
}

static void count_free(void *ctx, void *p, size_t size)
{
	auto *c = static_cast<counting_mem *>(ctx);
	if (!p)
		return;
	c->bytes.fetch_sub((int64_t)size, std::memory_order_relaxed);
	c->blocks.fetch_sub(1, std::memory_order_relaxed);
	std::free(p);
}

struct vmres_mem_ops counting_mem::ops()
{
	struct vmres_mem_ops m;
	m.alloc = count_alloc;
	m.free = count_free;
	m.ctx = this;
	return m;
}

void background_writer::start_body(body_base *b)
{
	stop();
	body_ = b;
	stop_.store(false, std::memory_order_relaxed);
	ops_.store(0, std::memory_order_relaxed);
	failed_.store(false, std::memory_order_relaxed);
	thread_ = new std::thread([this] { run_thread(); });
}

void background_writer::run_thread()
{
	ensure_registered();
	uint64_t n = 0;
	/* acquire pairs with the release store in stop() (only a flag) */
	while (!stop_.load(std::memory_order_acquire)) {
		if (!body_->step()) {
			failed_.store(true, std::memory_order_release);
			break;
		}
		ops_.store(++n, std::memory_order_relaxed);
		vmres_thread_quiescent(); /* qsbr: the writer is a reader too */
	}
}

void background_writer::stop()
{
	if (!thread_)
		return;
	stop_.store(true, std::memory_order_release);
	auto *t = static_cast<std::thread *>(thread_);
	t->join();
	delete t;
	thread_ = nullptr;
	delete body_;
	body_ = nullptr;
}

double now_seconds()
{
	using namespace std::chrono;
	return duration<double>(steady_clock::now().time_since_epoch()).count();
}

/* Removes the suite's own --vmres_* flags from argv. */
static void parse_own_flags(int *argc, char **argv)
{
	int out = 1;
	for (int i = 1; i < *argc; i++) {
		const char *a = argv[i];
		if (!std::strncmp(a, "--vmres_max_ranges=", 19))
			g_opts.max_ranges = std::strtoull(a + 19, nullptr, 10);
		else if (!std::strncmp(a, "--vmres_max_threads=", 20))
			g_opts.max_threads = std::atoi(a + 20);
		else if (!std::strncmp(a, "--vmres_window_s=", 17))
			g_opts.window_s = std::atof(a + 17);
		else
			argv[out++] = argv[i];
	}
	*argc = out;
	argv[out] = nullptr;
	if (g_opts.max_threads < 1)
		g_opts.max_threads = 1;
	if (!(g_opts.window_s > 0))
		g_opts.window_s = 0.2;
}

} // namespace vb

int main(int argc, char **argv)
{
	vb::parse_own_flags(&argc, argv);
	vb::ensure_registered();
	benchmark::AddCustomContext("vmres_rcu_flavor", vmres_rcu_flavor());
	benchmark::AddCustomContext("vmres_max_ranges", std::to_string(vb::opts().max_ranges));
	vb::register_benchmarks(vb::opts());
	benchmark::Initialize(&argc, argv);
	if (benchmark::ReportUnrecognizedArguments(argc, argv))
		return 1;
	benchmark::RunSpecifiedBenchmarks();
	benchmark::Shutdown();
	vb::cleanup_benchmarks();
	vmres_rcu_barrier();
	vb::unregister_now();
	return 0;
}
