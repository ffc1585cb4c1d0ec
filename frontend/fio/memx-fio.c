/* memx-fio.c — a fio external ioengine on libmemxfront.
 *
 *   fio --ioengine=external:/path/memx-fio.so --platform=sim --sim_dir=D \
 *       --domid=1 --device=device/vbd/51728 --rw=randread --bs=4k --iodepth=32 ...
 *
 * Each fio job opens its own xp and blkif device in its own process (fio's
 * init runs after the fork; a sim xp must be opened after a fork), so give
 * each job its own disk (numjobs=1 per device).  setup() runs in fio's parent
 * before the fork and needs the disk size: it opens the device, reads the
 * size and closes it again; the backend takes the device back to InitWait
 * (Initialising after Closed) and the job reconnects.
 *
 * Built by tools/bench.sh against fio's own source tree (Debian ships no fio
 * headers): -DFIO_EXTERNAL_ENGINE -include config-host.h -I<fio>.
 *
 * Completions: libmemxfront runs a callback per finished request from
 * memxfront_process(); the callback appends the io_u to a FIFO.  getevents()
 * first drops the entries fio consumed through event() after the previous
 * getevents(), then waits until at least min are queued and hands out up to
 * max.  Requests are pushed onto the ring (and the backend kicked, if it
 * asked to be) as they are queued, so no commit hook is needed.
 */
#include "fio.h"
#include "optgroup.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
        .def = "1",
        .minval = 1,
        .maxval = 64,
        .help = "blkif queues (capped by the backend)",
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

struct memx_fio {
    struct xp *xp;
    struct memxfront *f;
    struct io_u **done;     /* FIFO of completed io_us, capacity iodepth */
    unsigned ndone;         /* entries in done[] */
    unsigned nreturned;     /* the first nreturned were handed to fio by the last getevents */
    unsigned cap;
};

/* Opens the platform and the device named by the job's options; NULL after
 * logging a one-line reason. */
static struct memxfront *memx_connect(struct thread_data *td, struct xp **xpp)
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
    fo.nr_queues = o->queues;
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

/* In fio's parent, before the fork: the disk's size. */
static int memx_setup(struct thread_data *td)
{
    if (!td->files_index) {
        add_file(td, "memx", 0, 0);
        td->o.nr_files = td->o.nr_files ?: 1;
        td->o.open_files++;
    }
    struct xp *xp;
    struct memxfront *f = memx_connect(td, &xp);
    if (!f)
        return 1;
    td->files[0]->real_file_size = memxfront_info(f)->size_bytes;
    memx_disconnect(f, xp);
    return 0;
}

/* In the job's process: the connection the job's I/O goes through. */
static int memx_init(struct thread_data *td)
{
    struct memx_fio *m = calloc(1, sizeof(*m));
    if (!m) {
        td_verror(td, errno, "calloc");
        return 1;
    }
    m->cap = td->o.iodepth ? td->o.iodepth : 1;
    m->done = calloc(m->cap, sizeof(*m->done));
    if (!m->done) {
        free(m);
        td_verror(td, errno, "calloc");
        return 1;
    }
    m->f = memx_connect(td, &m->xp);
    if (!m->f) {
        free(m->done);
        free(m);
        return 1;
    }
    const struct memxfront_info *in = memxfront_info(m->f);
    if (in->nr_queues * in->queue_depth < m->cap)
        log_info("memx-fio: iodepth %u exceeds the device's %u slots; extra I/O waits for a slot\n", m->cap,
                 in->nr_queues * in->queue_depth);
    td->io_ops_data = m;
    return 0;
}

static void memx_cleanup(struct thread_data *td)
{
    struct memx_fio *m = td->io_ops_data;
    if (!m)
        return;
    memx_disconnect(m->f, m->xp);
    free(m->done);
    free(m);
    td->io_ops_data = NULL;
}

static void memx_done(void *arg, int status)
{
    struct io_u *io_u = arg;
    struct memx_fio *m = io_u->engine_data;
    io_u->error = status < 0 ? -status : 0;
    /* fio never has more than iodepth io_us in flight, so the FIFO cannot overflow. */
    m->done[m->ndone++] = io_u;
}

static enum fio_q_status memx_queue(struct thread_data *td, struct io_u *io_u)
{
    struct memx_fio *m = td->io_ops_data;
    int r;

    fio_ro_check(td, io_u);
    io_u->engine_data = m;
    switch (io_u->ddir) {
    case DDIR_READ:
        r = memxfront_read(m->f, io_u->offset, io_u->xfer_buf, io_u->xfer_buflen, memx_done, io_u);
        break;
    case DDIR_WRITE:
        r = memxfront_write(m->f, io_u->offset, io_u->xfer_buf, io_u->xfer_buflen, memx_done, io_u);
        break;
    case DDIR_TRIM:
        r = memxfront_discard(m->f, io_u->offset, io_u->xfer_buflen, memx_done, io_u);
        break;
    case DDIR_SYNC:
    case DDIR_DATASYNC:
        r = memxfront_flush(m->f, memx_done, io_u);
        break;
    default:
        io_u->error = EINVAL;
        return FIO_Q_COMPLETED;
    }
    if (r < 0) {
        /* No free ring slot or bounce page: fio reaps completions and requeues. */
        if (errno == EAGAIN)
            return FIO_Q_BUSY;
        io_u->error = errno;
        return FIO_Q_COMPLETED;
    }
    return FIO_Q_QUEUED;
}

static int memx_getevents(struct thread_data *td, unsigned int min, unsigned int max, const struct timespec *t)
{
    struct memx_fio *m = td->io_ops_data;

    /* fio has consumed what the previous call returned. */
    memmove(m->done, m->done + m->nreturned, (m->ndone - m->nreturned) * sizeof(*m->done));
    m->ndone -= m->nreturned;
    m->nreturned = 0;

    int timeout = t ? (int)(t->tv_sec * 1000 + t->tv_nsec / 1000000) : -1;
    if (memxfront_process(m->f) < 0)
        goto dead;
    while (m->ndone < min) {
        int r = memxfront_wait(m->f, timeout);
        if (r < 0)
            goto dead;
        if (r == 0 && timeout >= 0)
            break;
    }
    m->nreturned = m->ndone < max ? m->ndone : max;
    return (int)m->nreturned;
dead:
    /* ENOTCONN: in-flight requests were failed through their callbacks. */
    if (m->ndone) {
        m->nreturned = m->ndone < max ? m->ndone : max;
        return (int)m->nreturned;
    }
    log_err("memx-fio: device lost: %s\n", strerror(errno));
    return -errno;
}

static struct io_u *memx_event(struct thread_data *td, int event)
{
    struct memx_fio *m = td->io_ops_data;
    return m->done[event];
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
