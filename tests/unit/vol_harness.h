/* vol_harness.h — the one-volume fixture that test_volume and test_volmeta
 * share: a loop, the in-memory fake pool, a volume table and volume "t"
 * (64 pages, owner "test"), and synchronous wrappers around its I/O.
 *
 * The globals are the fixture's; a test may set them up by hand (another
 * pool shape, a restarted backend) and still end with teardown().  The
 * helpers assert with CUnit (CU_ASSERT*_FATAL ends the running test), so
 * they are called from inside tests only.
 */
#ifndef MEMX_VOL_HARNESS_H
#define MEMX_VOL_HARNESS_H

#include <stddef.h>
#include <stdint.h>

/* vol_wait.h first: its helpers' parameters (el, v) would shadow the globals below. */
#include "vol_wait.h"
#include "evloop.h"
#include "volume.h"
#include "volumes.h"

#define PG VOLUME_PAGE_SIZE
#define SPP (VOLUME_PAGE_SIZE / VOLUME_SECTOR_SIZE)

extern struct evloop *el;
extern struct pool *pool;
extern struct volumes *vs;
extern struct volume *v;

/* A loop, a fake pool, and volume "t" attached and loaded. */
void setup(void);
/* The same with nmeta metadata servers and claims through claimer (a
 * coordinator, volmeta.h), volume "t" attached but not waited for. */
struct volclaim_ops;
void setup_claimer(const struct volclaim_ops *claimer, int nmeta);
/* Checks the fake pool saw no protocol violation, then frees it all. */
void teardown(void);
/* One request on v, run to its callback (never called inside the request);
 * returns its status. */
int do_write(uint64_t sector, uint32_t nsect, const void *buf);
int do_read(uint64_t sector, uint32_t nsect, void *buf);
int do_discard(uint64_t sector, uint64_t nsect);
/* n bytes of a pattern from seed, never a zero byte. */
void fill(uint8_t *b, size_t n, unsigned seed);
/* v's counters. */
struct volume_stats stats(void);

#endif
