/* etcd_harness.h — what the backend's etcd tests (test_ownership,
 * test_membership_etcd, test_slabdir) share: a loop, a real throw-away etcd
 * (tests/etcd.sh; etcd_main re-executes the program under it when
 * MEMX_ETCD is not set, so etcd is stopped however the program ends), coord
 * handles on it, and synchronous wrappers that assert with CUnit (call them
 * from inside tests only).
 */
#ifndef MEMX_ETCD_HARNESS_H
#define MEMX_ETCD_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coord.h"
#include "cu_main.h"

extern struct evloop *el;
extern const char *etcd;

/* Runs the loop until *flag (or cond(arg)) or ms passed; returns whether it held. */
bool eh_run_until(const bool *flag, int ms);
bool eh_run_cond(bool (*cond)(void *), void *arg, int ms);
void eh_run_for(int ms);

/* A coord on the test etcd under prefix, with this lease TTL. */
struct coord *eh_open(const char *prefix, int ttl);

struct eh_range {
    int st;
    size_t n;
    char keys[16][128];
    char vals[16][512];
    int64_t lease[16];
};
int eh_put(struct coord *c, const char *key, const char *val);
int eh_del(struct coord *c, const char *key, bool prefix);
struct eh_range eh_get(struct coord *c, const char *key, bool prefix);
/* Revokes lease id behind coord's back (etcd's HTTP gateway). */
void eh_revoke(int64_t id);
/* etcd's pid (tests/etcd.sh exports it), for SIGSTOP. */
int eh_etcd_pid(void);
/* A loopback TCP relay to etcd (a thread): a coord opened on its URL loses
 * every connection while the relay is cut (connections closed, new ones
 * closed at once), as in a partition with RSTs, while etcd itself runs on. */
const char *eh_proxy_url(void);
void eh_proxy_cut(bool cut);
struct coord *eh_open_at(const char *url, const char *prefix, int ttl);

/* main(): under tests/etcd.sh, then the suites. */
int etcd_main(const char *prog, char **argv, const struct cu_suite *suites);

#endif
