/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Shared pieces of the libvmres benchmark binaries (google-benchmark, C++17
 * calling the C API).
 *
 * Threads: google-benchmark runs thread 0 of every benchmark on the main
 * thread and spawns the others per run. Every thread that touches libvmres
 * calls vb::ensure_registered() first; the registration is undone when the
 * thread exits (thread_local guard), or by main for the main thread.
 * Under the qsbr flavor registered threads are "online" and must announce
 * quiescent states: loops call vb::quiesce_every(i).
 *
 * Each binary defines vb::register_benchmarks(); bench_main.cc parses the
 * suite's own flags (--vmres_max_ranges=N, --vmres_max_threads=N,
 * --vmres_window_s=S) before google-benchmark's.
 */
#ifndef VMRES_BENCH_COMMON_H
#define VMRES_BENCH_COMMON_H

#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdint>
#include <vector>

#include <vmres/vmres.h>

namespace vb
{

struct options {
	uint64_t max_ranges = 1000000; /* largest live-range count (or free-ID count) swept */
	int max_threads = 8;	       /* largest thread count swept */
	double window_s = 0.2;	       /* timed window of windowed benchmarks */
};

const options &opts();
void register_benchmarks(const options &o); /* one per binary */
void cleanup_benchmarks();		    /* one per binary: frees cached fixtures */

void ensure_registered();
void unregister_now(); /* main thread only, at the end */

/* qsbr: announce a quiescent state every 64 operations (no-op elsewhere). */
inline void quiesce_every(uint64_t i)
{
	if ((i & 63) == 0)
		vmres_thread_quiescent();
}

/* xorshift64*: cheap per-thread randomness, no shared state. */
struct rng {
	uint64_t s;
	explicit rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ULL | 1)
	{
	}
	uint64_t next()
	{
		s ^= s >> 12;
		s ^= s << 25;
		s ^= s >> 27;
		return s * 0x2545F4914F6CDD1DULL;
	}
	/* uniform in [0, n) */
	uint64_t below(uint64_t n)
	{
		return (uint64_t)(((unsigned __int128)next() * n) >> 64);
	}
};

/* The thread counts swept: 1, 2, 4, 8, capped by --vmres_max_threads. */
void thread_sweep(benchmark::internal::Benchmark *b);
/* The same for benchmarks whose threads each run one timed window
 * (--vmres_window_s) and report it with SetIterationTime(). */
void thread_sweep_windowed(benchmark::internal::Benchmark *b);

/* A struct vmres_mem_ops hook that counts the bytes libvmres holds. */
struct counting_mem {
	std::atomic<int64_t> bytes{ 0 };
	std::atomic<int64_t> blocks{ 0 };
	struct vmres_mem_ops ops();
};

/* A background thread driving writer operations until stopped. */
class background_writer
{
      public:
	template <class F> void start(F &&step);
	void stop();
	uint64_t ops() const
	{
		/* relaxed: a progress count, read for a rate */
		return ops_.load(std::memory_order_relaxed);
	}
	bool failed() const
	{
		return failed_.load(std::memory_order_acquire);
	}
	~background_writer()
	{
		stop();
	}

      private:
	void *thread_ = nullptr;
	std::atomic<bool> stop_{ false };
	std::atomic<uint64_t> ops_{ 0 };
	std::atomic<bool> failed_{ false };
	struct body_base {
		virtual ~body_base() = default;
		virtual bool step() = 0; /* false on an unexpected error */
	};
	body_base *body_ = nullptr;
	void run_thread();
	void start_body(body_base *b);
};

template <class F> void background_writer::start(F &&step)
{
	struct body : body_base {
		F f;
		explicit body(F &&fn) : f(std::forward<F>(fn))
		{
		}
		bool step() override
		{
			return f();
		}
	};
	start_body(new body(std::forward<F>(step)));
}

/* Wall-clock seconds (steady clock). */
double now_seconds();

} // namespace vb

#endif
