/* memx-io — a guest's-eye workload on a MemX disk through libmemxfront:
 * seeded write/verify runs, single writes and checks, device info, and
 * malformed requests for hostile-frontend tests.  Exit status: 0 ok,
 * 1 a mismatch, an I/O error or an accepted bad request, 2 usage or set-up.
 * This file is the command line and set-up; the commands are in
 * memx-io-workload.c and memx-io-rawbad.c (memx-io.h). */
#include "config.h"
#include "log.h"
#include "memx-io.h"
#include "memxfront.h"
#include "pattern.h"
#include "xenplat.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xen/xen.h>
#include <xen/grant_table.h>
#include <xen/io/blkif.h>

static void usage(FILE *o)
{
    fprintf(o,
        "usage: memx-io --platform sim|real [--sim-dir D] [--domid N] --device device/vbd/51728 COMMAND\n"
        "commands:\n"
        "  verify --size 256M [--qd 32] [--seed S] [--flush-every N] [--discard-fraction F]\n"
        "         [--zero-fraction F] [--dup-fraction F] [--offset O]\n"
        "      random 4 KiB writes of seeded pages (every page once, then 25%% overwrites), discards,\n"
        "      then reads every page back and verifies it; discarded pages must read as zeros\n"
        "  write --seed S --offset O --size N [--bs B] [--qd Q]   write the seed's pattern\n"
        "  read-verify --seed S --offset O --size N [--bs B] [--qd Q]   check it\n"
        "  info                       the negotiated device parameters\n"
        "  hwrite --writer W --log FILE --size N [--offset O] [--qd Q] [--duration MS] [--bs B]\n"
        "         [--zero-fraction F] [--dup-fraction F] [--discard-fraction F]\n"
        "      per-page write history: every page once in random order, then random rewrites until\n"
        "      MS ms have passed; requests of 4 KiB to B (random lengths); pages stamped with\n"
        "      (writer, page, generation, issue time), or zeros or one of a few shared pages by the\n"
        "      fractions, a fraction of the requests discards; FILE logs every write issued and\n"
        "      every one acknowledged (memx-io-history.c)\n"
        "  history-verify --log FILE... --size N [--offset O] [--fence W@EPOCH]\n"
        "      every page holds its last acknowledged write or a later one that was in flight\n"
        "  raw-bad KIND               send one malformed request and print the answer; KIND is\n"
        "      too-many-segs, past-end, bad-gref, bad-sects, unknown-op, req-prod-ahead,\n"
        "      indirect-too-many, discard-past-end, storm (unknown ops, the ring kept full\n"
        "      for --timeout ms, at most 5000), or partial-mq (connect 2 queues, queue 0\n"
        "      pre-filled, queue 1's ring-ref left out: must be refused), sparse-write (a page\n"
        "      per 16 MiB written) or sparse-discard (the same, then one discard of it all)\n"
        "options:\n"
        "  --platform sim|real   sim: no hypervisor (needs --sim-dir); real: from a Xen domU\n"
        "  --sim-dir D           sim platform directory (default /run/memx/sim)\n"
        "  --domid N             this guest's domain id on sim (default 1)\n"
        "  --device P            frontend node, relative to /local/domain/<domid>/ or absolute\n"
        "  --ring-order N        ring pages 2^N per queue (default 4; capped by the backend)\n"
        "  --queues N            queues (default 1; capped by the backend)\n"
        "  --indirect N          max segments per indirect request, 0 = off (default 32)\n"
        "  --timeout MS          XenBus handshake timeout (default 10000)\n"
        "  --log-level L         error|warn|info|debug (default warn)\n");
}

static int cmd_info(struct memxfront *f, const char *dev)
{
    const struct memxfront_info *in = memxfront_info(f);
    char sz[32];
    printf("device:       %s\n", dev);
    printf("backend:      %s (domid %u)\n", in->backend, in->backend_domid);
    printf("size:         %s (%" PRIu64 " sectors of 512, sector-size %u)\n",
           memx_format_size(in->size_bytes, sz, sizeof(sz)), in->sectors, in->sector_size);
    printf("protocol:     %s\n", in->protocol);
    printf("queues:       %u x %u ring page(s), depth %u\n", in->nr_queues, in->ring_pages, in->queue_depth);
    printf("segments:     %u per request (%s), max I/O %zu KiB\n", in->max_segs,
           in->max_segs > BLKIF_MAX_SEGMENTS_PER_REQUEST ? "indirect" : "direct", in->max_io / 1024);
    printf("features:     flush=%d discard=%d readonly=%d info=%#x\n", in->flush, in->discard, in->readonly,
           in->vdisk_info);
    return 0;
}

static int parse_uint(const char *opt, const char *v, unsigned long max, unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long x = strtoul(v, &end, 0);
    if (errno || end == v || *end || v[0] == '-' || x > max) {
        fprintf(stderr, "memx-io: %s '%s': must be an integer from 0 to %lu\n", opt, v, max);
        return -1;
    }
    *out = (unsigned)x;
    return 0;
}

static int parse_frac(const char *opt, const char *v, double *out)
{
    char *end;
    double x = strtod(v, &end);
    if (end == v || *end || !(x >= 0 && x <= 1)) {
        fprintf(stderr, "memx-io: %s '%s': must be a fraction from 0 to 1\n", opt, v);
        return -1;
    }
    *out = x;
    return 0;
}

static int parse_sz(const char *opt, const char *v, uint64_t *out)
{
    if (memx_parse_size(v, out) < 0) {
        fprintf(stderr, "memx-io: %s '%s': not a size (use e.g. 4096, 64K, 256M)\n", opt, v);
        return -1;
    }
    return 0;
}

/* --fence W@EPOCH: writer W's writes issued after EPOCH (seconds, a fraction allowed) are a fenced owner's. */
static int parse_fence(const char *v, struct args *a)
{
    char *end;
    errno = 0;
    unsigned long long w = strtoull(v, &end, 10);
    double t = 0;
    if (!errno && end != v && *end == '@') {
        char *e2;
        t = strtod(end + 1, &e2);
        if (e2 != end + 1 && !*e2 && t > 0) {
            a->fence_writer = w;
            a->fence_ns = (uint64_t)(t * 1e9);
            return 0;
        }
    }
    fprintf(stderr, "memx-io: --fence '%s': use WRITER@EPOCH, e.g. 1@1764641234.250\n", v);
    return -1;
}

int main(int argc, char **argv)
{
    struct args a = {
        .platform = NULL, .sim_dir = "/run/memx/sim", .domid = 1, .ring_order = 4, .queues = 1, .indirect = 32,
        .timeout_ms = 10000, .bs = PAT_PAGE, .qd = 32, .seed = 1,
    };
    enum { O_PLAT = 256, O_SIMDIR, O_DOMID, O_DEV, O_RING, O_QUEUES, O_IND, O_TMO, O_SIZE, O_OFF, O_BS, O_QD,
           O_SEED, O_FLUSH, O_DISC, O_ZERO, O_DUP, O_LOG, O_WRITER, O_HLOG, O_DUR, O_FENCE };
    static const struct option lo[] = {
        { "platform", 1, 0, O_PLAT }, { "sim-dir", 1, 0, O_SIMDIR }, { "domid", 1, 0, O_DOMID },
        { "device", 1, 0, O_DEV }, { "ring-order", 1, 0, O_RING }, { "queues", 1, 0, O_QUEUES },
        { "indirect", 1, 0, O_IND }, { "timeout", 1, 0, O_TMO }, { "size", 1, 0, O_SIZE },
        { "offset", 1, 0, O_OFF }, { "bs", 1, 0, O_BS }, { "qd", 1, 0, O_QD }, { "seed", 1, 0, O_SEED },
        { "flush-every", 1, 0, O_FLUSH }, { "discard-fraction", 1, 0, O_DISC }, { "zero-fraction", 1, 0, O_ZERO },
        { "dup-fraction", 1, 0, O_DUP }, { "log-level", 1, 0, O_LOG }, { "writer", 1, 0, O_WRITER },
        { "log", 1, 0, O_HLOG }, { "duration", 1, 0, O_DUR }, { "fence", 1, 0, O_FENCE }, { "help", 0, 0, 'h' }, { "version", 0, 0, 'V' }, { 0, 0, 0, 0 },
    };
    int c, lvl = MX_LOG_WARN;
    unsigned u;
    while ((c = getopt_long(argc, argv, "hV", lo, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case O_PLAT: a.platform = optarg; break;
        case O_SIMDIR: a.sim_dir = optarg; break;
        case O_DOMID: bad = parse_uint("--domid", optarg, 32767, &u); a.domid = (int)u; break;
        case O_DEV: a.device = optarg; break;
        case O_RING: bad = parse_uint("--ring-order", optarg, 4, &a.ring_order); break;
        case O_QUEUES: bad = parse_uint("--queues", optarg, 16, &a.queues); break;
        case O_IND: bad = parse_uint("--indirect", optarg, 512, &a.indirect); break;
        case O_TMO: bad = parse_uint("--timeout", optarg, 3600000, &a.timeout_ms); break;
        case O_SIZE: bad = parse_sz("--size", optarg, &a.size); a.size_set = true; break;
        case O_OFF: bad = parse_sz("--offset", optarg, &a.offset); break;
        case O_BS: bad = parse_sz("--bs", optarg, &a.bs); break;
        case O_QD: bad = parse_uint("--qd", optarg, 4096, &a.qd); if (!bad && !a.qd) { bad = 1;
                   fprintf(stderr, "memx-io: --qd must be at least 1\n"); } break;
        case O_SEED: { char *e; a.seed = strtoull(optarg, &e, 0); if (e == optarg || *e) { bad = 1;
                       fprintf(stderr, "memx-io: --seed '%s': not a number\n", optarg); } break; }
        case O_FLUSH: bad = parse_uint("--flush-every", optarg, 1u << 30, &a.flush_every); break;
        case O_DISC: bad = parse_frac("--discard-fraction", optarg, &a.discard_frac); break;
        case O_ZERO: bad = parse_frac("--zero-fraction", optarg, &a.zero_frac); break;
        case O_DUP: bad = parse_frac("--dup-fraction", optarg, &a.dup_frac); break;
        case O_LOG: lvl = mx_log_parse_level(optarg);
            if (lvl < 0) { bad = 1; fprintf(stderr, "memx-io: --log-level '%s': use error, warn, info or debug\n",
                                            optarg); } break;
        case O_WRITER: bad = parse_uint("--writer", optarg, 1u << 30, &u); a.writer = u; break;
        case O_DUR: bad = parse_uint("--duration", optarg, 3600000, &u); a.duration_ms = u; break;
        case O_HLOG:
            if (a.nlogs == MEMX_IO_MAX_LOGS) {
                bad = 1;
                fprintf(stderr, "memx-io: at most %d --log files\n", MEMX_IO_MAX_LOGS);
            } else {
                a.logs[a.nlogs++] = optarg;
            }
            break;
        case O_FENCE: bad = parse_fence(optarg, &a); break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("memx-io %s\n", PACKAGE_VERSION); return 0;
        default: usage(stderr); return 2;
        }
        if (bad)
            return 2;
    }
    if (optind >= argc) {
        fprintf(stderr, "memx-io: no command given (verify, write, read-verify, info, hwrite,"
                " history-verify, raw-bad); see --help\n");
        return 2;
    }
    const char *cmd = argv[optind];
    const char *kind = optind + 1 < argc ? argv[optind + 1] : NULL;
    bool is_raw = !strcmp(cmd, "raw-bad");
    if (strcmp(cmd, "verify") && strcmp(cmd, "write") && strcmp(cmd, "read-verify") && strcmp(cmd, "info") &&
        strcmp(cmd, "hwrite") && strcmp(cmd, "history-verify") && !is_raw) {
        fprintf(stderr, "memx-io: unknown command '%s' (verify, write, read-verify, info, hwrite, history-verify,"
                " raw-bad)\n", cmd);
        return 2;
    }
    if ((is_raw && (!kind || optind + 2 < argc)) || (!is_raw && optind + 1 < argc)) {
        fprintf(stderr, "memx-io: %s\n", is_raw ? "raw-bad takes one KIND (see --help)" : "unexpected extra arguments");
        return 2;
    }
    if (a.zero_frac + a.dup_frac > 1) {
        fprintf(stderr, "memx-io: --zero-fraction plus --dup-fraction must not exceed 1\n");
        return 2;
    }
    if (!a.platform || (strcmp(a.platform, "sim") && strcmp(a.platform, "real"))) {
        fprintf(stderr, "memx-io: --platform must be 'sim' or 'real'\n");
        return 2;
    }
    if (!a.device) {
        fprintf(stderr, "memx-io: --device is required, e.g. --device device/vbd/51728\n");
        return 2;
    }
    mx_log_init("memx-io", (enum mx_log_level)lvl);

    struct xp *xp = !strcmp(a.platform, "sim") ? xp_open_sim(a.sim_dir, (uint16_t)a.domid) : xp_open_real();
    if (!xp) {
        if (!strcmp(a.platform, "real") && errno == ENOENT)
            fprintf(stderr, "memx-io: not running in a Xen domain (use --platform sim for testing)\n");
        else
            fprintf(stderr, "memx-io: cannot open the %s platform%s%s: %s\n", a.platform,
                    strcmp(a.platform, "sim") ? "" : " in ", strcmp(a.platform, "sim") ? "" : a.sim_dir,
                    strerror(errno));
        return 2;
    }
    char dev[160];
    if (a.device[0] == '/')
        snprintf(dev, sizeof(dev), "%s", a.device);
    else
        snprintf(dev, sizeof(dev), "/local/domain/%u/%s", xp_domid(xp), a.device);
    struct memxfront_opts fo;
    memxfront_opts_default(&fo);
    fo.ring_page_order = a.ring_order;
    fo.nr_queues = a.queues;
    fo.max_indirect_segs = a.indirect;
    fo.timeout_ms = a.timeout_ms;
    char err[256];
    if (is_raw && !strcmp(kind, "partial-mq")) {
        /* A hostile connect (issue 13 item 6): queue 0 pre-filled, queue 1's
         * ring-ref left out.  The backend must refuse the connect, not die. */
        fo.nr_queues = 2;
        fo.debug_partial_mq = 8;
        struct memxfront *f = memxfront_open(xp, dev, &fo, err, sizeof(err));
        if (f) {
            printf("raw-bad partial-mq: the backend connected a device with queue 1's ring-ref missing\n");
            memxfront_close(f, err, sizeof(err));
            xp_close(xp);
            return 1;
        }
        printf("raw-bad partial-mq: connect refused: %s\n", err);
        xp_close(xp);
        return 0;
    }
    struct memxfront *f = memxfront_open(xp, dev, &fo, err, sizeof(err));
    if (!f) {
        fprintf(stderr, "memx-io: %s\n", err);
        xp_close(xp);
        return 2;
    }
    const struct memxfront_info *in = memxfront_info(f);
    if (strcmp(cmd, "info")) {
        char sz[32];
        printf("memx-io: %s: %s, %u queue(s) x %u ring page(s), depth %u, %u segs/request%s%s\n", dev,
               memx_format_size(in->size_bytes, sz, sizeof(sz)), in->nr_queues, in->ring_pages, in->queue_depth,
               in->max_segs, in->flush ? ", flush" : "", in->discard ? ", discard" : "");
        fflush(stdout);
    }
    int rc;
    if (!strcmp(cmd, "verify"))
        rc = cmd_verify(f, &a);
    else if (!strcmp(cmd, "write"))
        rc = cmd_seq(f, &a, true);
    else if (!strcmp(cmd, "read-verify"))
        rc = cmd_seq(f, &a, false);
    else if (!strcmp(cmd, "info"))
        rc = cmd_info(f, dev);
    else if (!strcmp(cmd, "hwrite"))
        rc = cmd_hwrite(f, &a);
    else if (!strcmp(cmd, "history-verify"))
        rc = cmd_history_verify(f, &a);
    else
        rc = cmd_raw_bad(f, kind, a.timeout_ms < 5000 ? a.timeout_ms : 5000);
    if (memxfront_close(f, err, sizeof(err)) < 0)
        fprintf(stderr, "memx-io: %s\n", err);
    xp_close(xp);
    return rc;
}
