/* pool_harness.h — the shared harness of the pool's failure-handling tests
 * (test_rebuild.c, test_flap.c): a pool over the fake server connection
 * (fake_srvconn.c), its loop, the pages the tests wrote and the checks of
 * its replicas.  See pool_harness.c. */
#ifndef MEMX_POOL_HARNESS_H
#define MEMX_POOL_HARNESS_H

#include "cu_main.h"
#include "pool_int.h"

#include <stdbool.h>
#include <stdint.h>

#define SLAB_BYTES (256u << 10)     /* 64 pages */
#define NPAGES 40
#define MAXPAGES 64                 /* write_pages writes at most this many at once */
#define HARNESS_MAX_SERVERS 64      /* mkpool's static list (the pool itself has no limit) */

extern struct evloop *el;
extern struct pool *p;
extern uint8_t data[MAXPAGES][POOL_PAGE_SIZE];     /* what write_pages wrote, page i */
extern pool_page_t pages[MAXPAGES];                /* and where */

struct op { bool done; int status; pool_page_t page; };

void wdone(void *arg, int status, pool_page_t page);
void rdone(void *arg, int status);

/* Runs the loop until *flag (NULL: n turns) or about ms. */
bool run_until(const bool *flag, int ms);
void mkpool(int nsrv, int replicas);
void endpool(void);
void write_pages(unsigned n, unsigned seed);
int read_page(pool_page_t pg, uint8_t *out);
int good(const struct pslab *ps);
bool holds_good(const struct pslab *ps, int srv);
/* The one invariant no failure may break: a replica the pool reads from is
 * a slab its server really holds, with every page the pool stored there. */
void check_replicas(unsigned n);
bool wait_healed(int ms);
/* Reads every page of pages[0..n) back and compares it with what was written. */
void read_all(unsigned n);

/* The suite's init (the log, as prog, and the loop) and cleanup. */
int harness_suite_init(const char *prog);
int harness_suite_clean(void);

#endif
