/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * vmres-demo: libvmres playing the three cases of the design against a toy
 * VMM (docs/design.md, "The resource layer"):
 *   1. a lightweight VMM with a small system allocator of its own;
 *   2. a normal VMM whose device manager holds allocation callbacks, with
 *      hotplug threads adding and removing devices while vCPU threads
 *      dispatch PIO/MMIO exits through the bus and check every one;
 *   3. firmware-assigned resources (EXACT addresses and IRQs), the rest
 *      through callbacks, a NULL callback where the VMM allocates itself.
 * Exits 0 when every dispatch reached its owner and nothing leaked, 1
 * otherwise, 2 on a bad command line.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "demo.h"

static const char usage[] =
	"Usage: vmres-demo [OPTION]...\n"
	"Play the three resource-allocation cases of a VMM against libvmres and check them.\n"
	"\n"
	"  --vcpus N            vCPU threads dispatching exits in case 2 (1-256, default 2)\n"
	"  --hotplug-threads N  threads plugging/unplugging devices in case 2 (1-64, default 2)\n"
	"  --seconds S          how long case 2 runs (0.05-3600, default 2)\n"
	"  --devices N          device slots in case 2 (1-4096, default 64)\n"
	"  --seed N             random seed (default: from the clock; printed to replay)\n"
	"  --mem-budget SIZE    in case 2, a hotplug thread that finds more than SIZE\n"
	"                       live waits for RCU callbacks to free retired memory;\n"
	"                       SIZE is N MiB, or N KiB as NK, or N MiB as NM\n"
	"                       (at most 65536 MiB, default 64; 0: never waits)\n"
	"  --help               print this help and exit\n"
	"\n"
	"Exit status: 0 all dispatches correct and no leak, 1 a check failed, 2 bad usage.\n";

static int bad_argument(const char *arg)
{
	fprintf(stderr, "vmres-demo: unexpected argument '%s'\n", arg);
	fprintf(stderr, "Try 'vmres-demo --help' for more information.\n");
	return 2;
}

/* A whole decimal number and nothing else: true, and its value in @out. */
static bool parse_decimal(const char *arg, unsigned long long *out)
{
	char *end;

	errno = 0;
	/*
	 * A digit first: strtoull() skips blanks and negates a '-' after them
	 * (" -5" would be 2^64 - 5). Decimal only: base 0 read "010" as 8.
	 */
	if (!isdigit((unsigned char)*arg))
		return false;
	*out = strtoull(arg, &end, 10);
	return !errno && !*end;
}

static int parse_unsigned(const char *opt, const char *arg, unsigned long long min,
			  unsigned long long max, unsigned long long *out)
{
	unsigned long long v;

	if (parse_decimal(arg, &v) && v >= min && v <= max) {
		*out = v;
		return 0;
	}
	fprintf(stderr,
		"vmres-demo: invalid value '%s' for %s (expected an integer in %llu-%llu)\n", arg,
		opt, min, max);
	fprintf(stderr, "Try 'vmres-demo --help' for more information.\n");
	return 2;
}

/* --mem-budget: N (MiB), NK (KiB) or NM (MiB), at most 65536 MiB; in KiB. */
static int parse_budget(const char *arg, unsigned long long *kib)
{
	static const unsigned long long max_kib = 65536ull << 10;
	char digits[24];
	size_t len = strlen(arg);
	unsigned long long unit = 1024, v;

	if (len && (arg[len - 1] == 'K' || arg[len - 1] == 'M')) {
		unit = arg[len - 1] == 'K' ? 1 : 1024;
		len--;
	}
	if (len && len < sizeof(digits)) {
		memcpy(digits, arg, len);
		digits[len] = '\0';
		if (parse_decimal(digits, &v) && v <= max_kib / unit) {
			*kib = v * unit;
			return 0;
		}
	}
	fprintf(stderr,
		"vmres-demo: invalid value '%s' for --mem-budget (expected N MiB, NK or NM, "
		"at most 65536 MiB)\n",
		arg);
	fprintf(stderr, "Try 'vmres-demo --help' for more information.\n");
	return 2;
}

static int parse_seconds(const char *arg, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(arg, &end);
	/* Plain decimal: strtod() also skips blanks, reads signs and hex floats. */
	if ((!isdigit((unsigned char)*arg) && *arg != '.') || strpbrk(arg, "xX") || errno || *end ||
	    !isfinite(v) || v < 0.05 || v > 3600) {
		fprintf(stderr,
			"vmres-demo: invalid value '%s' for --seconds (expected 0.05 to 3600)\n",
			arg);
		fprintf(stderr, "Try 'vmres-demo --help' for more information.\n");
		return 2;
	}
	*out = v;
	return 0;
}

enum { OPT_VCPUS = 1, OPT_HOTPLUG, OPT_SECONDS, OPT_DEVICES, OPT_SEED, OPT_BUDGET, OPT_HELP };

static int parse_one(int c, const char *arg, struct demo_options *opt)
{
	unsigned long long v = 0;
	int rc = 0;

	switch (c) {
	case OPT_VCPUS:
		rc = parse_unsigned("--vcpus", arg, 1, 256, &v);
		opt->vcpus = (unsigned)v;
		break;
	case OPT_HOTPLUG:
		rc = parse_unsigned("--hotplug-threads", arg, 1, 64, &v);
		opt->hotplug_threads = (unsigned)v;
		break;
	case OPT_SECONDS:
		rc = parse_seconds(arg, &opt->seconds);
		break;
	case OPT_DEVICES:
		rc = parse_unsigned("--devices", arg, 1, 4096, &v);
		opt->devices = (unsigned)v;
		break;
	case OPT_SEED:
		rc = parse_unsigned("--seed", arg, 0, UINT64_MAX, &v);
		opt->seed = v;
		break;
	case OPT_BUDGET:
		rc = parse_budget(arg, &v);
		opt->mem_budget_kib = v;
		break;
	default:
		rc = 2; /* getopt printed the reason */
		fprintf(stderr, "Try 'vmres-demo --help' for more information.\n");
	}
	return rc;
}

/* 0: run; 1: --help printed; 2: bad usage. */
static int parse_options(int argc, char **argv, struct demo_options *opt)
{
	static const struct option longopts[] = {
		{ "vcpus", required_argument, NULL, OPT_VCPUS },
		{ "hotplug-threads", required_argument, NULL, OPT_HOTPLUG },
		{ "seconds", required_argument, NULL, OPT_SECONDS },
		{ "devices", required_argument, NULL, OPT_DEVICES },
		{ "seed", required_argument, NULL, OPT_SEED },
		{ "mem-budget", required_argument, NULL, OPT_BUDGET },
		{ "help", no_argument, NULL, OPT_HELP },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	*opt = (struct demo_options){ .vcpus = 2,
				      .hotplug_threads = 2,
				      .seconds = 2,
				      .devices = 64,
				      .mem_budget_kib = 64 << 10,
				      .seed = (uint64_t)time(NULL) ^ ((uint64_t)clock() << 20) };
	opterr = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c == OPT_HELP) {
			fputs(usage, stdout);
			return 1;
		}
		if (parse_one(c, optarg, opt))
			return 2;
	}
	if (optind < argc)
		return bad_argument(argv[optind]);
	return 0;
}

int main(int argc, char **argv)
{
	struct demo_options opt;
	struct demo_result res = { 0 };
	int rc = parse_options(argc, argv, &opt);
	bool ok;

	if (rc)
		return rc == 1 ? 0 : 2;
	setvbuf(stdout, NULL, _IOLBF, 0);
	vmres_thread_register();
	printf("vmres-demo: libvmres %s, RCU flavor %s, seed %" PRIu64
	       " (replay with --seed %" PRIu64 ")\n",
	       vmres_version(), vmres_rcu_flavor(), opt.seed, opt.seed);

	demo_case_lightweight(&opt, &res);
	demo_case_hotplug(&opt, &res);
	demo_case_firmware(&opt, &res);

	vmres_rcu_barrier();
	vmres_thread_unregister();
	ok = !res.wrong_dispatches && !res.leaked_bytes && !res.errors;
	printf("\nsummary: wrong dispatches %llu, leaked bytes %llu, other errors %llu: %s\n",
	       (unsigned long long)res.wrong_dispatches, (unsigned long long)res.leaked_bytes,
	       (unsigned long long)res.errors, ok ? "OK" : "FAILED");
	return ok ? 0 : 1;
}
