/* memx-fio.c — a fio external ioengine on libmemxfront.
 *
 *   fio --ioengine=external:/path/memx-fio.so --platform=sim --sim_dir=D \
 *       --domid=1 --device=device/vbd/51728 --rw=randread --bs=4k --iodepth=32 ...
 *
 * Jobs share the disk as processes in a guest share one blkfront.  A blkif
 * device has exactly one frontend: a second connection to the same device
 * makes the backend drop the first.  So all jobs of one fio run that name the
 * same device (same platform, sim_dir, domid and device strings) go through
 * ONE connection, opened by the first job to start and closed by the last
 * running one to finish (after a stonewall the next group opens it again),
 * made with one queue per job (the `queues` option, 0 = one per job on the
 * device, at most 16, capped by the backend's multi-queue-max-queues).  Each
 * job sends all its requests to its own queue (memxfront_set_queue), the
 * least used one when it starts; with more jobs than queues, jobs share
 * queues.  numjobs=4, or a reader beside a writer, just work.  Two fio
 * processes on one device still cannot: as two guests cannot share a vbd.
 *
 * Threads, not processes: fio forks one process per job by default, and a
 * connection (its rings, grants, event channels, XenStore watch) cannot be
 * shared across processes that fork after it was made.  So setup(), which
 * fio runs for every job in its main process before it starts any job, turns
 * fio's `thread` option on, as fio's own rbd and rados engines do.  The jobs
 * and their results are the same; fio still prints "Starting N processes"
 * (counted before setup) and the pids it reports are thread ids.  With
 * create_serialize=0 fio runs setup inside the job instead, too late: init
 * then refuses unless thread=1 is set.
 * The first job to open the connection sets its ring_order, queues and
 * indirect options for all.
 *
 * Concurrency: one mutex per device serializes every libmemxfront call (a
 * handle is single-threaded) and guards every job's completion FIFO.  A
 * completion runs the callback of whichever job submitted it, in whichever
 * job's thread processed the ring, and lands in the submitter's FIFO.  One
 * job at a time polls the device's fd (the leader, mutex released meanwhile);
 * the others wait on a condition variable the leader broadcasts after each
 * round, so no event is taken by one thread while another sleeps on it.
 *
 * setup() needs the disk size: the first job's setup opens the device, reads
 * the size and closes it again (the backend goes back to InitWait and the
 * shared connection reconnects); later jobs reuse the size.
 *
 * Completions: getevents() first drops the entries fio consumed through
 * event() after the previous getevents(), then waits until at least min are
 * queued and hands out up to max.  Requests are pushed onto the ring (and the
 * backend kicked, if it asked to be) as they are queued, so no commit hook is
 * needed.
 *
 * Built by frontend/fio/build.sh against fio's own source tree (Debian ships
 * no fio headers): -DFIO_EXTERNAL_ENGINE -include config-host.h -I<fio>.
 */
#include "fio.h"
#include "optgroup.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../lib/log.h"
#include "../memxfront.h"
#include "../../lib/xen/xenplat.h"

struct memx_fio_opts {
    void *pad;          /* fio keeps its own pointer in the first word */
    char *platform;
    char *sim_dir;
    unsigned int domid;
    char *device;
    unsigned int ring_order;
    unsigned int queues;
    unsigned int indirect;
    char *log_level;
};

static struct fio_option options[] = {
    {
        .name = "platform",
        .lname = "MemX platform",
        .type = FIO_OPT_STR_STORE,
        .off1 = offsetof(struct memx_fio_opts, platform),
        .def = "sim",
        .help = "sim (no hypervisor, needs sim_dir) or real (from a Xen domU)",
        .category = FIO_OPT_C_ENGINE,
        .group = FIO_OPT_G_INVALID,
    },
    {
        .name = "sim_dir",
        .lname = "MemX sim directory",
        .type = FIO_OPT_STR_STORE,
        .off1 = offsetof(struct memx_fio_opts, sim_dir),
        .def = "/run/memx/sim",
        .help = "sim platform directory (memx-simxsd's --dir)",
        .category = FIO_OPT_C_ENGINE,
        .group = FIO_OPT_G_INVALID,
    },
    {
        .name = "domid",
        .lname = "MemX guest domid",
        .type = FIO_OPT_INT,
        .off1 = offsetof(struct memx_fio_opts, domid),
        .def = "1",
        .minval = 0,
        .maxval = 65535,
        .help = "this guest's domain id on sim",
        .category = FIO_OPT_C_ENGINE,
        .group = FIO_OPT_G_INVALID,
    },
    {
        .name = "device",
        .lname = "MemX frontend node",
        .type = FIO_OPT_STR_STORE,
        .off1 = offsetof(struct memx_fio_opts, device),
        .def = "device/vbd/51728",
        .help = "frontend XenStore node, relative to /local/domain/<domid>/ or absolute",
        .category = FIO_OPT_C_ENGINE,
        .group = FIO_OPT_G_INVALID,
    },
    {
        .name = "ring_order",
        .lname = "MemX ring order",
        .type = FIO_OPT_INT,
        .off1 = offsetof(struct memx_fio_opts, ring_order),
        .def = "4",
        .minval = 0,
        .maxval = 8,
        .help = "ring pages 2^N per queue (capped by the backend)",
        .category = FIO_OPT_C_ENGINE,
        .group = FIO_OPT_G_INVALID,
    },
    {
        .name = "queues",
        .lname = "MemX queues",
        .type = FIO_OPT_INT,
        .off1 = offsetof(struct memx_fio_opts, queues),
        .def = "0",
        .minval = 0,
        .maxval = 16,
        .help = "blkif queues, 0 = one per job on the device (capped by the backend)",
        .category = FIO_OPT_C_ENGINE,
        .group = FIO_OPT_G_INVALID,
    },
    {
        .name = "indirect",
        .lname = "MemX indirect segments",
        .type = FIO_OPT_INT,
        .off1 = offsetof(struct memx_fio_opts, indirect),
        .def = "32",
        .minval = 0,
        .maxval = 512,
        .help = "max segments per indirect request, 0 = off",
        .category = FIO_OPT_C_ENGINE,
        .group = FIO_OPT_G_INVALID,
    },
    {
        .name = "memx_log",
        .lname = "MemX log level",
        .type = FIO_OPT_STR_STORE,
        .off1 = offsetof(struct memx_fio_opts, log_level),
        .def = "warn",
        .help = "libmemxfront log level: error|warn|info|debug",
        .category = FIO_OPT_C_ENGINE,
        .group = FIO_OPT_G_INVALID,
    },
    {
        .name = NULL,
    },
};

#define MEMX_FIO_MAX_QUEUES 16     /* libmemxfront's most queues per device */

/* One device of this fio process: the connection its jobs share. */
struct memx_dev {
    struct memx_dev *next;
    char key[512];              /* platform, sim_dir, domid, device as the jobs spell them */
    pthread_mutex_t mu;         /* everything below, each job's FIFO, every libmemxfront call */
    pthread_cond_t cv;          /* a poll round ended */
    unsigned njobs;             /* jobs set up on the device (setup, fio's main thread) */
    bool have_size;
    uint64_t size;
    struct xp *xp;              /* NULL while no job runs */
    struct memxfront *f;
    unsigned users;             /* jobs between init and cleanup */
    unsigned qusers[MEMX_FIO_MAX_QUEUES];
    bool polling;               /* a job polls the fd with mu released */
    bool lost;                  /* the connection failed: nothing more completes */
};

struct memx_job;
struct memx_req {               /* the completion callback's argument, one per io_u */
    struct memx_job *j;
    struct io_u *io_u;
};

struct memx_job {
    struct memx_dev *d;
    int q;                      /* the queue this job's requests go to */
    struct memx_req *reqs;      /* by io_u->index (< iodepth) */
    struct io_u **done;         /* FIFO of completed io_us, capacity iodepth */
    unsigned ndone;             /* entries in done[] */
    unsigned nreturned;         /* the first nreturned were handed to fio by the last getevents */
    unsigned cap;
    unsigned inflight;
    bool closing;               /* cleanup: fio freed the io_us, callbacks must not touch them */
};

static pthread_mutex_t devs_mu = PTHREAD_MUTEX_INITIALIZER;
static struct memx_dev *devs;

/* The device this job names, created on first use; NULL on ENOMEM. */
static struct memx_dev *dev_get(struct thread_data *td)
{
    struct memx_fio_opts *o = td->eo;
    char key[sizeof(((struct memx_dev *)0)->key)];
    snprintf(key, sizeof(key), "%s|%s|%u|%s", o->platform, strcmp(o->platform, "sim") ? "" : o->sim_dir, o->domid,
             o->device);
    pthread_mutex_lock(&devs_mu);
    struct memx_dev *d;
    for (d = devs; d && strcmp(d->key, key); d = d->next)
        ;
    if (!d && (d = calloc(1, sizeof(*d)))) {
        snprintf(d->key, sizeof(d->key), "%s", key);
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&d->cv, &ca);
        pthread_condattr_destroy(&ca);
        pthread_mutex_init(&d->mu, NULL);
        d->next = devs;
        devs = d;
    }
    pthread_mutex_unlock(&devs_mu);
    return d;
}

/* Opens the platform and the device named by the job's options, with nq
 * queues; NULL after logging a one-line reason. */
static struct memxfront *memx_connect(struct thread_data *td, unsigned nq, struct xp **xpp)
{
    struct memx_fio_opts *o = td->eo;
    int lvl = mx_log_parse_level(o->log_level);
    if (lvl < 0) {
        log_err("memx-fio: memx_log must be error, warn, info or debug, not '%s'\n", o->log_level);
        return NULL;
    }
    mx_log_init("memx-fio", (enum mx_log_level)lvl);
    struct xp *xp;
    if (!strcmp(o->platform, "sim"))
        xp = xp_open_sim(o->sim_dir, (uint16_t)o->domid);
    else if (!strcmp(o->platform, "real"))
        xp = xp_open_real();
    else {
        log_err("memx-fio: platform must be 'sim' or 'real', not '%s'\n", o->platform);
        return NULL;
    }
    if (!xp) {
        log_err("memx-fio: cannot open the %s platform%s%s: %s\n", o->platform,
                strcmp(o->platform, "sim") ? "" : " in ", strcmp(o->platform, "sim") ? "" : o->sim_dir,
                strerror(errno));
        return NULL;
    }
    char dev[256];
    if (o->device[0] == '/')
        snprintf(dev, sizeof(dev), "%s", o->device);
    else
        snprintf(dev, sizeof(dev), "/local/domain/%u/%s", xp_domid(xp), o->device);
    struct memxfront_opts fo;
    memxfront_opts_default(&fo);
    fo.ring_page_order = o->ring_order;
    fo.nr_queues = nq;
    fo.max_indirect_segs = o->indirect;
    char err[256];
    struct memxfront *f = memxfront_open(xp, dev, &fo, err, sizeof(err));
    if (!f) {
        log_err("memx-fio: %s\n", err);
        xp_close(xp);
        return NULL;
    }
    *xpp = xp;
    return f;
}

static void memx_disconnect(struct memxfront *f, struct xp *xp)
{
    char err[256];
    if (memxfront_close(f, err, sizeof(err)) < 0)
        log_err("memx-fio: %s\n", err);
    xp_close(xp);
}

/* In fio's main process, before any job starts (with create_serialize, the
 * default): the disk's size, and thread mode (see the header). */
static int memx_setup(struct thread_data *td)
{
    td->o.use_thread = 1;
    if (!td->files_index) {
        add_file(td, "memx", 0, 0);
        td->o.nr_files = td->o.nr_files ?: 1;
        td->o.open_files++;
    }
    struct memx_dev *d = dev_get(td);
    if (!d) {
        log_err("memx-fio: out of memory\n");
        return 1;
    }
    pthread_mutex_lock(&d->mu);
    d->njobs++;
    if (!d->have_size && d->f) {       /* create_serialize=0: a job already runs */
        d->size = memxfront_info(d->f)->size_bytes;
        d->have_size = true;
    }
    if (!d->have_size) {
        struct xp *xp;
        struct memxfront *f = memx_connect(td, 1, &xp);
        if (!f) {
            pthread_mutex_unlock(&d->mu);
            return 1;
        }
        d->size = memxfront_info(f)->size_bytes;
        d->have_size = true;
        memx_disconnect(f, xp);
    }
    td->files[0]->real_file_size = d->size;
    pthread_mutex_unlock(&d->mu);
    return 0;
}

/* Runs completion callbacks of every job on the device; mu held. */
static void dev_process(struct memx_dev *d)
{
    if (d->lost)
        return;
    if (memxfront_process(d->f) < 0 && errno == ENOTCONN) {
        log_err("memx-fio: device %s lost: %s\n", d->key, strerror(errno));
        d->lost = true;
        pthread_cond_broadcast(&d->cv);
    }
}

static int ms_until(const struct timespec *deadline)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long long ms = (deadline->tv_sec - now.tv_sec) * 1000ll + (deadline->tv_nsec - now.tv_nsec) / 1000000;
    return ms < 0 ? 0 : ms > 1000000 ? 1000000 : (int)ms;
}

/* One wait for completions, mu held (released meanwhile): the leader polls
 * the device's fd and processes what came; the others wait for its
 * broadcast.  deadline NULL: no limit. */
static void dev_round(struct memx_dev *d, const struct timespec *deadline)
{
    if (d->lost)
        return;
    if (d->polling) {
        if (deadline)
            pthread_cond_timedwait(&d->cv, &d->mu, deadline);
        else
            pthread_cond_wait(&d->cv, &d->mu);
        return;
    }
    d->polling = true;
    struct pollfd p = { .fd = memxfront_fd(d->f), .events = POLLIN };
    int ms = deadline ? ms_until(deadline) : -1;
    pthread_mutex_unlock(&d->mu);
    poll(&p, 1, ms);
    pthread_mutex_lock(&d->mu);
    d->polling = false;
    dev_process(d);
    pthread_cond_broadcast(&d->cv);
}

static bool past(const struct timespec *deadline)
{
    return deadline && ms_until(deadline) == 0;
}

static void deadline_in(struct timespec *ts, long long ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

static void job_free(struct memx_job *j)
{
    free(j->reqs);
    free(j->done);
    free(j);
}

/* In the job's thread: join the device's connection (open it if this is the
 * first job to run) and take the least used queue. */
static int memx_init(struct thread_data *td)
{
    struct memx_fio_opts *o = td->eo;
    if (!td->o.use_thread) {
        log_err("memx-fio: jobs must run as threads (they share one connection per device); setup turns "
                "thread on, but with create_serialize=0 fio runs it too late: add thread=1\n");
        return 1;
    }
    struct memx_dev *d = dev_get(td);
    struct memx_job *j = calloc(1, sizeof(*j));
    if (!d || !j) {
        free(j);
        td_verror(td, ENOMEM, "calloc");
        return 1;
    }
    j->d = d;
    j->cap = td->o.iodepth ? td->o.iodepth : 1;
    j->done = calloc(j->cap, sizeof(*j->done));
    j->reqs = calloc(j->cap, sizeof(*j->reqs));
    if (!j->done || !j->reqs) {
        job_free(j);
        td_verror(td, ENOMEM, "calloc");
        return 1;
    }
    pthread_mutex_lock(&d->mu);
    if (!d->f) {
        unsigned nq = o->queues ? o->queues : d->njobs ? d->njobs : 1;
        if (nq > MEMX_FIO_MAX_QUEUES)
            nq = MEMX_FIO_MAX_QUEUES;
        d->f = memx_connect(td, nq, &d->xp);
        if (!d->f) {
            pthread_mutex_unlock(&d->mu);
            job_free(j);
            return 1;
        }
        d->lost = false;
        memset(d->qusers, 0, sizeof(d->qusers));
    }
    const struct memxfront_info *in = memxfront_info(d->f);
    unsigned nq = in->nr_queues < MEMX_FIO_MAX_QUEUES ? in->nr_queues : MEMX_FIO_MAX_QUEUES;
    j->q = 0;
    for (unsigned q = 1; q < nq; q++)
        if (d->qusers[q] < d->qusers[j->q])
            j->q = (int)q;
    d->qusers[j->q]++;
    d->users++;
    mx_info("%s: job %s uses queue %d of %u (%u job(s) on it)", d->key, td->o.name, j->q, in->nr_queues,
            d->qusers[j->q]);
    if (in->queue_depth < j->cap)
        log_info("memx-fio: iodepth %u exceeds the queue's %u slots; extra I/O waits for a slot\n", j->cap,
                 in->queue_depth);
    pthread_mutex_unlock(&d->mu);
    td->io_ops_data = j;
    return 0;
}

/* Leaves the connection; the last job out closes it. */
static void memx_cleanup(struct thread_data *td)
{
    struct memx_job *j = td->io_ops_data;
    if (!j)
        return;
    struct memx_dev *d = j->d;
    pthread_mutex_lock(&d->mu);
    j->closing = true;
    if (j->inflight && !d->lost) {
        /* fio reaps every request before it frees its io_us and calls
         * cleanup; if one is still out, its buffer is gone and it must not
         * complete into it: give the device up (every job sees ENOTCONN). */
        log_err("memx-fio: %s: job %s ends with %u request(s) in flight; abandoning the device\n", d->key,
                td->o.name, j->inflight);
        memxfront_abort(d->f);
        d->lost = true;
        pthread_cond_broadcast(&d->cv);
    }
    d->qusers[j->q]--;
    if (--d->users == 0) {
        memx_disconnect(d->f, d->xp);
        d->f = NULL;
        d->xp = NULL;
    }
    pthread_mutex_unlock(&d->mu);
    job_free(j);
    td->io_ops_data = NULL;
}

/* Runs under d->mu, in whichever job's thread processed the ring. */
static void memx_done(void *arg, int status)
{
    struct memx_req *r = arg;
    struct memx_job *j = r->j;
    j->inflight--;
    if (j->closing)
        return;
    r->io_u->error = status < 0 ? -status : 0;
    /* A job never has more than iodepth io_us in flight, so the FIFO cannot overflow. */
    j->done[j->ndone++] = r->io_u;
}

static int submit(struct memx_job *j, struct io_u *io_u, struct memx_req *r)
{
    struct memxfront *f = j->d->f;
    memxfront_set_queue(f, j->q);
    switch (io_u->ddir) {
    case DDIR_READ:
        return memxfront_read(f, io_u->offset, io_u->xfer_buf, io_u->xfer_buflen, memx_done, r);
    case DDIR_WRITE:
        return memxfront_write(f, io_u->offset, io_u->xfer_buf, io_u->xfer_buflen, memx_done, r);
    case DDIR_TRIM:
        return memxfront_discard(f, io_u->offset, io_u->xfer_buflen, memx_done, r);
    case DDIR_SYNC:
    case DDIR_DATASYNC:
        return memxfront_flush(f, memx_done, r);
    default:
        errno = EINVAL;
        return -1;
    }
}

static enum fio_q_status memx_queue(struct thread_data *td, struct io_u *io_u)
{
    struct memx_job *j = td->io_ops_data;
    struct memx_dev *d = j->d;

    fio_ro_check(td, io_u);
    if (io_u->index >= j->cap) {
        io_u->error = EINVAL;
        return FIO_Q_COMPLETED;
    }
    struct memx_req *r = &j->reqs[io_u->index];
    r->j = j;
    r->io_u = io_u;
    pthread_mutex_lock(&d->mu);
    int rc;
    for (;;) {
        rc = d->lost ? (errno = ENOTCONN, -1) : submit(j, io_u, r);
        if (rc == 0 || errno != EAGAIN)
            break;
        if (j->inflight) {
            /* Our queue (or the bounce pool) is full: fio reaps and requeues. */
            pthread_mutex_unlock(&d->mu);
            return FIO_Q_BUSY;
        }
        /* Full with other jobs' requests (a shared queue): fio would only
         * spin on BUSY with nothing of ours to reap, so wait for a slot. */
        struct timespec dl;
        deadline_in(&dl, 1000);
        dev_round(d, &dl);
    }
    if (rc == 0)
        j->inflight++;
    else
        io_u->error = errno;
    pthread_mutex_unlock(&d->mu);
    return rc == 0 ? FIO_Q_QUEUED : FIO_Q_COMPLETED;
}

static int memx_getevents(struct thread_data *td, unsigned int min, unsigned int max, const struct timespec *t)
{
    struct memx_job *j = td->io_ops_data;
    struct memx_dev *d = j->d;
    struct timespec dl, *deadline = NULL;
    if (t) {
        deadline_in(&dl, t->tv_sec * 1000ll + t->tv_nsec / 1000000);
        deadline = &dl;
    }
    pthread_mutex_lock(&d->mu);
    /* fio has consumed what the previous call returned. */
    memmove(j->done, j->done + j->nreturned, (j->ndone - j->nreturned) * sizeof(*j->done));
    j->ndone -= j->nreturned;
    j->nreturned = 0;

    dev_process(d);
    while (j->ndone < min && !d->lost && !past(deadline))
        dev_round(d, deadline);
    j->nreturned = j->ndone < max ? j->ndone : max;
    int n = (int)j->nreturned;
    /* Lost: in-flight requests were failed through their callbacks, so an
     * empty FIFO with a wait asked for means nothing will ever come. */
    bool dead = d->lost && n == 0 && min > 0;
    pthread_mutex_unlock(&d->mu);
    return dead ? -ENOTCONN : n;
}

static struct io_u *memx_event(struct thread_data *td, int event)
{
    struct memx_job *j = td->io_ops_data;
    return j->done[event];
}

static int memx_open_file(struct thread_data *td, struct fio_file *f)
{
    (void)td;
    (void)f;
    return 0;
}

static int memx_invalidate(struct thread_data *td, struct fio_file *f)
{
    (void)td;
    (void)f;
    return 0;
}

/* fio looks this symbol up by name after dlopen(). */
struct ioengine_ops ioengine = {
    .name = "memx",
    .version = FIO_IOOPS_VERSION,
    .options = options,
    .option_struct_size = sizeof(struct memx_fio_opts),
    .flags = FIO_DISKLESSIO | FIO_NOEXTEND,
    .setup = memx_setup,
    .init = memx_init,
    .cleanup = memx_cleanup,
    .queue = memx_queue,
    .getevents = memx_getevents,
    .event = memx_event,
    .open_file = memx_open_file,
    .invalidate = memx_invalidate,
};
