/* membership.h — the memory servers this backend uses, as etcd lists them
 * (membership.c): a server that registers is added to the pool, one that
 * drains is drained, one whose key goes (lease expired, or deregistered) is
 * removed.  Also registers this backend (backends/<node>) under its lease.
 * memx-backd makes one when [cluster] etcd is set.
 */
#ifndef MEMX_MEMBERSHIP_H
#define MEMX_MEMBERSHIP_H

#include <stddef.h>

struct coord;
struct pool;
struct membership;

/* provider: ours; a server registered with another one is reported and skipped. */
struct membership *membership_new(struct coord *c, struct pool *p, const char *provider);
void membership_free(struct membership *m);
/* "3 servers (1 draining), 1 skipped, 0 bad keys" */
const char *membership_describe(const struct membership *m, char *buf, size_t len);

#endif
