/* volpub_int.h — what volpub.c (publishing records in batches) and
 * volsync.c (bringing servers that fell behind back in sync, and the
 * in-sync set in etcd) share: the batch and the per-server questions.
 */
#ifndef MEMX_VOLPUB_INT_H
#define MEMX_VOLPUB_INT_H

#include "volmeta_int.h"

enum bkind { B_PUB, B_RESEND, B_LIST, B_COPY };

struct batch {
    struct volmeta *m;          /* NULL: its volume is gone (orphaned) */
    enum bkind kind;
    TAILQ_ENTRY(batch) link;
    struct ev_defer later;      /* ends a batch no server took, from the loop */
    struct pubrec *recs;        /* B_PUB */
    uint32_t n;                 /* B_PUB: records; B_RESEND: sent from the front of what is owed */
    int pending;                /* answers outstanding */
    uint64_t t_ms;
    bool fenced, done;
    bool again;                 /* a server answered EAGAIN (its etcd view is stale) */
    int tgt, src;               /* B_RESEND, B_COPY: to tgt; B_LIST, B_COPY: copying from src */
    uint64_t cursor;            /* B_COPY: where the listing goes on (0: it was the last part) */
    int nst;                    /* servers when it was made: st[0..nst) */
    uint8_t st[];               /* per server: F_SENT | F_ANSWERED | F_ACKED | F_GOOD */
};

enum { F_SENT = 1, F_ANSWERED = 2, F_ACKED = 4, F_GOOD = 8,       /* good: acked while caught up */
       F_REPLIED = 16 };                                            /* answered by the server, not "down" */

static inline bool has(const struct batch *b, int s, uint8_t f) { return s >= 0 && s < b->nst && (b->st[s] & f); }
static inline void mark(struct batch *b, int s, uint8_t f)
{
    if (s >= 0 && s < b->nst)
        b->st[s] |= f;
}
/* Sent to s and not answered yet. */
static inline bool silent(const struct batch *b, int s) { return has(b, s, F_SENT) && !has(b, s, F_ANSWERED); }

/* ---- volpub.c ---- */
struct batch *volpub_batch_alloc(struct volmeta *m);
void volpub_unlink_free(struct volmeta *m, struct batch *b);
/* s is owed records (it missed some, or everything): it is behind. */
bool volpub_behind(const struct volmeta *m, int s);
void volpub_owe_all(struct volmeta *m, int s);
/* A known server that came back as a new process holds none of our records. */
void volpub_check_restarts(struct volmeta *m);
/* Whether b can end now, and how. */
void volpub_try_end(struct batch *b, uint64_t now);
/* The lateness and catch-up tick runs. */
void volpub_arm(struct volmeta *m);

/* ---- volsync.c ---- */
bool volpub_insync_ready(struct volmeta *m, struct batch *b);
void volpub_recheck_all(struct volmeta *m);
void volpub_maybe_join(struct volmeta *m, int s);
/* Servers behind that answer again get what they are owed. */
void volpub_catch_up(struct volmeta *m, uint64_t now);

#endif
