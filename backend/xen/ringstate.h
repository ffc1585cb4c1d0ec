/* ringstate.h — what a restarted memx-backd needs to resume a queue's ring
 * (issue 13 item 9), kept in a small file that outlives the process.
 *
 * The blkif ring is a union: a response is written into the slot of a
 * request already taken.  A backend killed between writing responses and
 * publishing them (rsp_prod) leaves slots that hold its unpublished
 * responses where the frontend's requests were, and the requests it had
 * taken and not yet answered are nowhere but in its memory.  So a successor
 * cannot read the ring to know what the guest still waits for.
 *
 * The rule: every request taken is copied here (its raw entry and its index)
 * before anything can overwrite its slot; its response index is written here
 * before its response is written to the ring; entries are let go only once
 * the response that answers them is published.  A successor that maps the
 * same ring reads: the guest waits for exactly the requests whose answer is
 * not below the ring's published rsp_prod.  It replays those (their granted
 * pages are still the guest's: it was never answered), answers each once
 * from rsp_prod on, and goes on taking requests where its predecessor
 * stopped (req_cons).  Replaying is safe: the guest has not seen their
 * answers, so it issued nothing that depends on them (a write's data is
 * still in its pages; a write lands twice with the same data).
 *
 * The file is a MAP_SHARED mapping of a file on tmpfs (the runtime
 * directory): a store made by a process is in the page cache the moment it
 * is made, so a kill -9 loses none; a host crash loses the guest too.  Only
 * the process itself writes it, so no fences: plain ordered stores
 * (compiler barriers) are enough for a successor that starts after it died.
 */
#ifndef MEMX_RINGSTATE_H
#define MEMX_RINGSTATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ring;
struct ringstate;

/* Opens (or creates) path for ring r (mapped, indices from ring_map), whose
 * first grant ref is ref0.  If the file holds a consistent state of this
 * very ring (a predecessor died with it Connected), r's indices are moved to
 * where that predecessor stood and *nreplay says how many requests must be
 * replayed (rs_replay_ent); else the file starts afresh from r.  NULL (why
 * says it) if the file cannot be had: the queue then runs without it, as
 * before.  -1 in *nreplay: the state is this ring's but impossible (more
 * requests outstanding than the ring holds): the frontend broke its ring. */
struct ringstate *rs_open(const char *path, struct ring *r, uint32_t ref0, int *nreplay, char *why,
                          size_t whylen);
/* Whether rs_open took over a predecessor's state of this ring (its
 * requests replayed, if any, and its req_cons gone on from): a restart or
 * an upgrade hand-over, not a fresh connection.  False for NULL. */
bool rs_resumed(const struct ringstate *s);
/* The i-th request to replay (0 .. nreplay-1, oldest first): its entry. */
int  rs_replay_ent(const struct ringstate *s, unsigned i);
/* Records the request just taken at ring index idx (raw: the entry as
 * read, entsz bytes); returns its entry.  Called before anything else can
 * be written to its slot. */
int  rs_take(struct ringstate *s, uint32_t idx, const void *raw);
const void *rs_raw(const struct ringstate *s, int ent);
/* Entry ent is answered by response index rsp_idx: before that response is
 * written to the ring. */
void rs_answer(struct ringstate *s, int ent, uint32_t rsp_idx);
/* Responses [old, new) are published (after rsp_prod was written). */
void rs_published(struct ringstate *s, uint32_t old, uint32_t new);
/* Unmaps; remove: the device closed cleanly, nothing to resume. */
void rs_close(struct ringstate *s, bool remove);

#endif
