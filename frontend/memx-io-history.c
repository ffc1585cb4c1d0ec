/* memx-io-history.c — per-page write history (memx-io.h): hwrite stamps
 * every page it writes with (writer, page, generation, issue time) and logs
 * each acknowledged write; history-verify reads every page back and checks it
 * against those logs, so a fault test can tell the last acknowledged write of
 * a page from an older one, another page's, a foreign writer's or garbage,
 * and can see a write a fenced owner issued after its fence.
 *
 * Page layout: magic, writer, page, generation, issue time (CLOCK_REALTIME
 * ns, comparable across the namespaces of one machine and with date +%s.%N),
 * a check word over those, then words that follow from them alone.
 * Log: "# memx-io history writer W", then one "a PAGE GEN ISSUE_NS ACK_NS"
 * line per acknowledged write, written at the acknowledgement (before the
 * next request is issued: a write the log names was acknowledged).
 * A writer keeps at most one write per page in flight, so per writer and
 * page the generations are acknowledged in order.
 */
#include "memx-io.h"
#include "memx-io-job.h"
#include "memxfront.h"
#include "pattern.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define H_MAGIC 0x31305453494858ull   /* "XHIST01" */
#define H_WORDS (PAT_PAGE / 8)

static uint64_t real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct stamp { uint64_t writer, page, gen, issue_ns; };

static uint64_t stamp_check(const struct stamp *s)
{
    uint64_t x = s->writer ^ s->page * 0x9E3779B97F4A7C15ull ^ s->gen * 0xC2B2AE3D27D4EB4Full ^ s->issue_ns;
    return pat_mix(&x);
}

static void stamp_fill(uint8_t *pg, const struct stamp *s)
{
    uint64_t *w = (uint64_t *)(void *)pg, x = stamp_check(s);
    w[0] = H_MAGIC, w[1] = s->writer, w[2] = s->page, w[3] = s->gen, w[4] = s->issue_ns, w[5] = x;
    for (unsigned i = 6; i < H_WORDS; i++)
        w[i] = pat_mix(&x);
}

enum found { F_ZERO, F_STAMP, F_GARBAGE };

static enum found stamp_parse(const uint8_t *pg, struct stamp *s)
{
    const uint64_t *w = (const uint64_t *)(const void *)pg;
    uint64_t any = 0;
    for (unsigned i = 0; i < H_WORDS; i++)
        any |= w[i];
    if (!any)
        return F_ZERO;
    if (w[0] != H_MAGIC)
        return F_GARBAGE;
    *s = (struct stamp){ w[1], w[2], w[3], w[4] };
    uint64_t x = stamp_check(s);
    if (w[5] != x)
        return F_GARBAGE;
    for (unsigned i = 6; i < H_WORDS; i++)
        if (w[i] != pat_mix(&x))
            return F_GARBAGE;
    return F_STAMP;
}

/* ---- hwrite ---- */

/* SIGTERM/SIGINT: issue nothing more, give what is in flight 2 s (a stuck pool must not hang
 * the run: clock_gettime is async-signal-safe, and the 64-bit store is one instruction). */
static volatile sig_atomic_t stop_asked;
static struct job *stop_job;
static void on_stop(int sig)
{
    (void)sig;
    stop_asked = 1;
    if (stop_job)
        stop_job->give_up_ns = now_ns() + 2000000000ull;
}

struct hw {
    FILE *log;
    uint64_t gen, end_ns, acked, last_ack, max_gap, gap_at;
    uint64_t *inflight_gen;      /* per page: the write in flight (0: none) */
    uint64_t *issue;             /* per page: its issue time */
};

static int gen_hwrite(struct job *j, struct op *o)
{
    struct hw *h = j->ctx;
    if (stop_asked || (j->count >= j->npages && (!h->end_ns || now_ns() >= h->end_ns)))
        return 0;
    uint64_t p;
    if (!job_next_page(j, &p))
        return 0;
    struct stamp s = { j->a->writer, j->base / PAT_PAGE + p, ++h->gen, real_ns() };
    stamp_fill(o->buf, &s);
    h->inflight_gen[p] = s.gen;
    h->issue[p] = s.issue_ns;
    o->kind = OP_WRITE;
    o->page = p;
    o->npages = 1;
    j->count++;
    return 1;
}

static void hwrite_done(struct job *j, struct op *o, int status)
{
    struct hw *h = j->ctx;
    uint64_t p = o->page, now = real_ns();
    if (!status) {
        /* A line here is an acknowledged write: history-verify holds the pool to it. */
        fprintf(h->log, "a %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", j->base / PAT_PAGE + p,
                h->inflight_gen[p], h->issue[p], now);
        fflush(h->log);
        if (h->last_ack && now - h->last_ack > h->max_gap)
            h->max_gap = now - h->last_ack, h->gap_at = h->last_ack;
        h->last_ack = now;
        h->acked++;
    } else if (j->errors <= 5) {
        fprintf(stderr, "memx-io: hwrite at page %" PRIu64 " (generation %" PRIu64 ") failed: %s\n",
                j->base / PAT_PAGE + p, h->inflight_gen[p], strerror(-status));
    }
    h->inflight_gen[p] = 0;
}

/* Completions after the command returned (memxfront_close fails what is left): nothing to log. */
static void late_done(struct job *j, struct op *o, int status) { (void)j, (void)o, (void)status; }

int cmd_hwrite(struct memxfront *f, const struct args *a)
{
    static struct job j;
    static struct hw h;
    if (!a->nlogs) {
        fprintf(stderr, "memx-io: hwrite needs --log FILE (and --writer N)\n");
        return 2;
    }
    if (job_init(&j, f, a, 1) < 0)
        return 2;
    h.inflight_gen = calloc(j.npages, sizeof(*h.inflight_gen));
    h.issue = calloc(j.npages, sizeof(*h.issue));
    h.log = fopen(a->logs[0], "w");
    if (!h.inflight_gen || !h.issue || !h.log) {
        fprintf(stderr, "memx-io: %s: %s\n", a->logs[0], strerror(errno));
        job_free(&j);
        return 2;
    }
    stop_job = &j;
    struct sigaction sa = { .sa_handler = on_stop };
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    fprintf(h.log, "# memx-io history writer %" PRIu64 "\n", a->writer);
    fflush(h.log);
    uint64_t t0 = now_ns();
    h.end_ns = a->duration_ms ? t0 + a->duration_ms * 1000000ull : 0;
    /* Whatever the pool does, the run ends: 5 s after the duration, writes still in flight are left so. */
    j.give_up_ns = a->duration_ms ? h.end_ns + 5000000000ull : 0;
    j.ctx = &h;
    j.done = hwrite_done;
    j.gen = gen_hwrite;
    j.rng = a->writer * 0x9E3779B97F4A7C15ull ^ real_ns();
    for (uint64_t i = 0; i < j.npages; i++)
        j.perm[i] = i;
    for (uint64_t i = j.npages; i > 1; i--) {
        uint64_t k = pat_mix(&j.rng) % i, t = j.perm[i - 1];
        j.perm[i - 1] = j.perm[k];
        j.perm[k] = t;
    }
    double s = job_run(&j);
    job_report("hwrite", &j, s);
    uint64_t unacked = 0;
    for (uint64_t p = 0; p < j.npages; p++)
        unacked += h.inflight_gen[p] != 0;
    printf("hwrite: writer=%" PRIu64 " issued=%" PRIu64 " acked=%" PRIu64 " unacked=%" PRIu64 " io_errors=%" PRIu64
           " max_ack_gap_ms=%.0f gap_from=%.3f\n", a->writer, h.gen, h.acked, unacked, j.errors,
           (double)h.max_gap / 1e6, (double)h.gap_at / 1e9);
    fclose(h.log);
    j.done = late_done;
    if (!j.inflight) {
        free(h.inflight_gen);
        free(h.issue);
    }
    job_free(&j);
    return j.errors || unacked ? 1 : 0;
}

/* ---- history-verify ---- */

struct rec { uint64_t writer, page, gen, issue, ack; };

static int rec_cmp(const void *x, const void *y)
{
    const struct rec *a = x, *b = y;
    if (a->writer != b->writer)
        return a->writer < b->writer ? -1 : 1;
    if (a->page != b->page)
        return a->page < b->page ? -1 : 1;
    return a->gen < b->gen ? -1 : a->gen > b->gen;
}

struct hv {
    struct rec *r;
    size_t n;
    uint64_t writers[MEMX_IO_MAX_LOGS];
    unsigned nwriters;
    const struct rec **last;     /* per page of the job: its last acknowledged write (NULL: none) */
    uint64_t fence_writer, fence_ns;
    uint64_t verified, lost, mismatches, fenced, inflight, zero;
};

static const struct rec *rec_find(const struct hv *v, uint64_t writer, uint64_t page, uint64_t gen)
{
    struct rec k = { writer, page, gen, 0, 0 };
    return bsearch(&k, v->r, v->n, sizeof(*v->r), rec_cmp);
}

static int load_log(struct hv *v, const char *path)
{
    FILE *fp = fopen(path, "r");
    if (!fp) {
        fprintf(stderr, "memx-io: %s: %s\n", path, strerror(errno));
        return -1;
    }
    char line[256];
    uint64_t w = 0;
    if (!fgets(line, sizeof(line), fp) || sscanf(line, "# memx-io history writer %" SCNu64, &w) != 1) {
        fprintf(stderr, "memx-io: %s: not a memx-io history log\n", path);
        fclose(fp);
        return -1;
    }
    for (unsigned i = 0; i < v->nwriters; i++)
        if (v->writers[i] == w) {
            fprintf(stderr, "memx-io: %s: writer %" PRIu64 " has two logs\n", path, w);
            fclose(fp);
            return -1;
        }
    v->writers[v->nwriters++] = w;
    size_t cap = v->n;
    while (fgets(line, sizeof(line), fp)) {
        struct rec r = { .writer = w };
        if (sscanf(line, "a %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64, &r.page, &r.gen, &r.issue, &r.ack) != 4)
            continue;       /* a line cut short by a killed writer */
        if (v->n == cap) {
            cap = cap ? cap * 2 : 4096;
            struct rec *n = realloc(v->r, cap * sizeof(*n));
            if (!n) {
                fclose(fp);
                return -1;
            }
            v->r = n;
        }
        v->r[v->n++] = r;
    }
    fclose(fp);
    return 0;
}

static bool known_writer(const struct hv *v, uint64_t w)
{
    for (unsigned i = 0; i < v->nwriters; i++)
        if (v->writers[i] == w)
            return true;
    return false;
}

static void problem(struct hv *v, const char *what, uint64_t page, const struct rec *want, const struct stamp *s,
                    enum found fd)
{
    if (v->lost + v->mismatches + v->fenced > 10)
        return;
    char got[128], exp[96] = "nothing acknowledged";
    if (fd == F_ZERO)
        snprintf(got, sizeof(got), "zeros");
    else if (fd == F_GARBAGE)
        snprintf(got, sizeof(got), "garbage");
    else
        snprintf(got, sizeof(got), "writer %" PRIu64 " page %" PRIu64 " generation %" PRIu64 " issued %.3f",
                 s->writer, s->page, s->gen, (double)s->issue_ns / 1e9);
    if (want)
        snprintf(exp, sizeof(exp), "writer %" PRIu64 " generation %" PRIu64 " acknowledged %.3f", want->writer,
                 want->gen, (double)want->ack / 1e9);
    fprintf(stderr, "memx-io: %s at page %" PRIu64 ": last acknowledged %s, found %s\n", what, page, exp, got);
}

/* One page read back: is it the last acknowledged write, or a later one that was in flight? */
static void classify(struct hv *v, uint64_t page, const struct rec *w, const uint8_t *pg)
{
    struct stamp s = { 0 };
    enum found fd = stamp_parse(pg, &s);
    if (fd == F_GARBAGE || (fd == F_STAMP && (s.page != page || !known_writer(v, s.writer)))) {
        v->mismatches++;
        problem(v, fd == F_GARBAGE ? "MISMATCH (garbage)" : s.page != page ? "MISMATCH (another page's write)" :
                "MISMATCH (a writer with no log)", page, w, &s, fd);
        return;
    }
    if (fd == F_STAMP && v->fence_ns && s.writer == v->fence_writer && s.issue_ns > v->fence_ns) {
        v->fenced++;
        problem(v, "FENCED WRITER'S WRITE", page, w, &s, fd);
        return;
    }
    if (fd == F_ZERO) {
        if (w) {
            v->lost++;
            problem(v, "LOST (reads as zeros)", page, w, &s, fd);
        } else {
            v->verified++;
            v->zero++;
        }
        return;
    }
    bool ok;
    if (!w || (s.writer == w->writer && s.gen >= w->gen)) {
        ok = true;                  /* it, or a later write of the same writer */
    } else if (s.writer == w->writer) {
        ok = false;                 /* older than the last acknowledged */
    } else {
        /* Another writer's: fine if it was not over before the last acknowledged write began.  An
         * unacknowledged one issued earlier is an old owner's write landing over a newer one. */
        const struct rec *r = rec_find(v, s.writer, s.page, s.gen);
        ok = r ? r->ack >= w->issue : s.issue_ns >= w->issue;
    }
    if (!ok) {
        v->lost++;
        problem(v, "LOST (an older write)", page, w, &s, fd);
        return;
    }
    v->verified++;
    v->inflight += !w || s.writer != w->writer || s.gen != w->gen;
}

static void hverify_done(struct job *j, struct op *o, int status)
{
    struct hv *v = j->ctx;
    if (status) {
        if (j->errors <= 5)
            fprintf(stderr, "memx-io: read at page %" PRIu64 " failed: %s\n", j->base / PAT_PAGE + o->page,
                    strerror(-status));
        return;
    }
    for (unsigned i = 0; i < o->npages; i++)
        classify(v, j->base / PAT_PAGE + o->page + i, v->last[o->page + i], o->buf + (size_t)i * PAT_PAGE);
}

static int gen_hread(struct job *j, struct op *o)
{
    if (j->next >= j->npages)
        return 0;
    unsigned n = (unsigned)(j->a->bs / PAT_PAGE);
    if (j->next + n > j->npages)
        n = (unsigned)(j->npages - j->next);
    o->kind = OP_READ;
    o->page = j->next;
    o->npages = n;
    j->next += n;
    return 1;
}

int cmd_history_verify(struct memxfront *f, const struct args *a)
{
    static struct job j;
    static struct hv v;
    v.fence_writer = a->fence_writer;
    v.fence_ns = a->fence_ns;
    if (!a->nlogs) {
        fprintf(stderr, "memx-io: history-verify needs --log FILE (one per writer)\n");
        return 2;
    }
    if (a->bs % PAT_PAGE || a->bs == 0) {
        fprintf(stderr, "memx-io: --bs %" PRIu64 " must be a multiple of 4096\n", a->bs);
        return 2;
    }
    if (job_init(&j, f, a, (unsigned)(a->bs / PAT_PAGE)) < 0)
        return 2;
    for (unsigned i = 0; i < a->nlogs; i++)
        if (load_log(&v, a->logs[i]) < 0) {
            job_free(&j);
            return 2;
        }
    qsort(v.r, v.n, sizeof(*v.r), rec_cmp);
    v.last = calloc(j.npages, sizeof(*v.last));
    if (!v.last) {
        job_free(&j);
        return 2;
    }
    uint64_t first = j.base / PAT_PAGE;
    for (size_t i = 0; i < v.n; i++) {
        const struct rec *r = &v.r[i];
        if (r->page < first || r->page >= first + j.npages)
            continue;
        const struct rec **l = &v.last[r->page - first];
        if (!*l || r->ack > (*l)->ack)
            *l = r;
    }
    j.ctx = &v;
    j.done = hverify_done;
    j.gen = gen_hread;
    double s = job_run(&j);
    job_report("read", &j, s);
    uint64_t unread = j.npages - v.verified - v.lost - v.mismatches - v.fenced;
    printf("history-verify: %" PRIu64 " pages verified, %" PRIu64 " lost, %" PRIu64 " mismatches, %" PRIu64
           " from a fenced writer (%zu acknowledged writes in %u log(s); %" PRIu64 " pages hold a write in flight, %"
           PRIu64 " never written, %" PRIu64 " unread)\n", v.verified, v.lost, v.mismatches, v.fenced, v.n,
           v.nwriters, v.inflight, v.zero, unread);
    printf("history-verify: verified=%" PRIu64 " lost=%" PRIu64 " mismatches=%" PRIu64 " fenced=%" PRIu64
           " unread=%" PRIu64 " io_errors=%" PRIu64 "\n", v.verified, v.lost, v.mismatches, v.fenced, unread,
           j.errors);
    int rc = v.lost || v.mismatches || v.fenced || unread || j.errors ? 1 : 0;
    j.done = late_done;
    if (!j.inflight) {
        free(v.last);
        free(v.r);
    }
    job_free(&j);
    return rc;
}
