/* upgrade.h — memx-backd hands its devices over to a new binary without the
 * guests noticing (memxctl upgrade, or SIGUSR2).
 *
 * The process stops taking requests on every ring (blkback_quiesce: what
 * the frontends add stays on the rings), lets what is in flight complete and
 * publishes the answers (a request is answered only once its record is
 * durable in the pool, volmeta.h: so a drained backend holds no acknowledged
 * write the pool lacks), then execve()s the binary with the same command
 * line: same pid (a supervisor sees no exit), every file descriptor closed
 * (grant mappings, event channels, XenStore and pool connections go with
 * them), nothing written to XenStore.  The successor starts like any
 * restarted backend: it finds the Connected devices, maps their rings again
 * from the ring state files (ringstate.h), re-attaches each volume by name
 * under a higher epoch (which would fence this process if it still ran), and
 * serves on.  A drain that does not end within UPGRADE_DRAIN_MS hands over
 * anyway: the successor replays what the guest still waits for.
 *
 * The predecessor passes the hand-over's start to the successor in the
 * environment (MEMX_HANDOVER), so the successor can say how long the
 * guests' I/O paused: from the moment the rings stopped being read to the
 * moment every device that was connected serves again.  If the exec fails
 * (the binary vanished, is not executable, is not a program), the process
 * logs why and serves on, and status says so.
 */
#ifndef MEMX_UPGRADE_H
#define MEMX_UPGRADE_H

#include <stddef.h>

#define UPGRADE_DRAIN_MS 10000      /* past this, hand over with requests in flight: they are replayed */
#define UPGRADE_RESUME_MS 30000     /* a successor still missing devices by then says so */

struct evloop;
struct blkback;
struct upgrade;
struct json_object;

/* At start-up, before anything could change the binary's path: resolves
 * the path this binary was started from (argv[0] as the shell found it; a
 * package upgrade replaces the file there, while /proc/self/exe would name
 * the deleted old inode) and keeps a copy of argv.  Reads and clears
 * MEMX_HANDOVER: set, this process is a successor.  NULL: out of memory. */
struct upgrade *upgrade_new(struct evloop *el, int argc, char **argv);
/* The devices to hand over and to resume (after blkback_new, before
 * blkback_start). */
void upgrade_set_blkback(struct upgrade *u, struct blkback *bb);
void upgrade_free(struct upgrade *u);

/* Starts a hand-over to binary (NULL: the start-up path).  reply(arg, r)
 * runs once with the answer for memxctl: at once with {"error":...} (a bad
 * binary, a hand-over already under way), or just before the exec with
 * {"ok":true, "handover":ID, "drain_ms":..., ...}; r is the callee's (put
 * after reply returns).  reply may be NULL (SIGUSR2). */
void upgrade_start(struct upgrade *u, const char *binary, void (*reply)(void *arg, struct json_object *r),
                   void *arg);
/* memx-backd is shutting down: a hand-over under way is abandoned (its
 * client told so) and none starts any more. */
void upgrade_abandon(struct upgrade *u);
/* Adds "pid", "binary" and, after a hand-over (as predecessor that failed
 * to exec, or as successor), "handover": {"id", "state", ...} to a status
 * reply. */
void upgrade_status(void *u, struct json_object *o);

#endif
