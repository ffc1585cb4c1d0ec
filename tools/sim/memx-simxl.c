/* memx-simxl — the sim platform's toolstack: writes and removes disk devices
 * in memx-simxsd the way xl/libxl 4.17 does for
 *   disk = ['vdev=xvdb, access=rw, backendtype=phy, script=block-memx, target=memx:vol:256M']
 * (keys from shared/xenlab/REPORT.md §8), and waits for the backend as libxl
 * does: InitWait within 10 s after create, Closed within 10 s after destroy.
 * Also a few xenstore-* style commands for scripts (ls, read, write, wait).
 */
#include "xenplat.h"
#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *prog = "memx-simxl";

static void usage(FILE *f)
{
    fprintf(f,
            "usage: memx-simxl --dir DIR COMMAND ...\n"
            "  create  --domid N --vdev xvdb|51728 --target STR [--backend-domid 0]\n"
            "          [--type vbd|vbd3] [--access rw|ro] [--timeout S]\n"
            "          write the backend and frontend nodes as libxl does, then wait\n"
            "          for the backend to reach InitWait (state 2)\n"
            "  destroy --domid N --vdev V [--backend-domid 0] [--type vbd|vbd3] [--timeout S]\n"
            "          online=0, state=5, wait for state 6, remove both directories\n"
            "  ls [PATH]                      list a subtree (default /)\n"
            "  read PATH                      print a node's value\n"
            "  write PATH VALUE               set a node\n"
            "  wait PATH VALUE [--timeout S]  wait until PATH reads VALUE (default 10 s)\n"
            "DIR is the sim dir served by memx-simxsd (or $MEMX_SIM_DIR).\n");
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || v > max || s[0] == '-')
        return -1;
    *out = v;
    return 0;
}

/* xvdX names as libxl's device number scheme: xvda..xvdp are 202:<16*i>,
 * longer names use the extended 1<<28 form.  Also accepts a plain number. */
static int parse_vdev(const char *s, unsigned long *devid, char *name, size_t nlen)
{
    if (isdigit((unsigned char)s[0])) {
        if (parse_uint(s, 0xfffffff0ul | (1ul << 28), devid) < 0)
            return -1;
        if ((*devid >> 8) == 202 && (*devid & 15) == 0)
            snprintf(name, nlen, "xvd%c", (char)('a' + ((*devid & 0xff) >> 4)));
        else if (*devid & (1ul << 28)) {
            unsigned long idx = (*devid & ~(1ul << 28)) >> 8;
            char rev[8];
            int k = 0;
            idx++;
            while (idx && k < 7) {
                idx--;
                rev[k++] = (char)('a' + idx % 26);
                idx /= 26;
            }
            int n = snprintf(name, nlen, "xvd");
            while (k && (size_t)n + 1 < nlen)
                name[n++] = rev[--k];
            name[n] = '\0';
        } else
            snprintf(name, nlen, "%lu", *devid);
        return 0;
    }
    if (strncmp(s, "xvd", 3) != 0 || !s[3] || strlen(s) > 7)
        return -1;
    unsigned long idx = 0;
    for (const char *p = s + 3; *p; p++) {
        if (*p < 'a' || *p > 'z')
            return -1;
        idx = idx * 26 + (unsigned long)(*p - 'a' + 1);
    }
    idx--;
    *devid = idx < 16 ? (202ul << 8) | (idx << 4) : (1ul << 28) | (idx << 8);
    snprintf(name, nlen, "%s", s);
    return 0;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Waits until done(value) holds for path (value NULL when absent); returns 0,
 * or -1 on timeout with *last holding the last value seen (caller frees). */
static int wait_node(struct xp *xp, const char *path, bool (*done)(const char *v, const void *arg),
                     const void *arg, int timeout_ms, char **last)
{
    static const char token[] = "memx-simxl";
    if (xp_xs_watch(xp, path, token) < 0)
        return -1;
    uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
    int rc = -1;
    *last = NULL;
    for (;;) {
        free(*last);
        *last = xp_xs_read(xp, XP_TXN_NULL, path, NULL);
        if (done(*last, arg)) {
            rc = 0;
            break;
        }
        uint64_t now = now_ms();
        if (now >= deadline)
            break;
        struct pollfd pfd = { .fd = xp_xs_fd(xp), .events = POLLIN };
        if (poll(&pfd, 1, (int)(deadline - now)) < 0 && errno != EINTR)
            break;
        char *p, *t;
        while (xp_xs_next_watch(xp, &p, &t) == 1) {
            free(p);
            free(t);
        }
    }
    xp_xs_unwatch(xp, path, token);
    return rc;
}

static bool is_value(const char *v, const void *arg) { return v && strcmp(v, arg) == 0; }

/* libxl waits for InitWait; a backend that raced on to Connected is fine too. */
static bool backend_ready(const char *v, const void *arg) { return v && atoi(v) >= 2 && atoi(v) <= 4; }

struct dev {
    unsigned long domid, bdomid, devid;
    char name[16];
    const char *type, *target, *access;
    int timeout_ms;
    char be[128], fe[128];
};

static int rm_both(struct xp *xp, const struct dev *d)
{
    for (;;) {
        xp_txn_t t = xp_xs_txn_start(xp);
        if (!t)
            return -1;
        xp_xs_rm(xp, t, d->be);
        xp_xs_rm(xp, t, d->fe);
        if (xp_xs_txn_end(xp, t, false) == 0)
            return 0;
        if (errno != EAGAIN)
            return -1;
    }
}

static int write_device(struct xp *xp, const struct dev *d)
{
    char fe_id[8], be_id[8], dev_s[16];
    snprintf(fe_id, sizeof(fe_id), "%lu", d->domid);
    snprintf(be_id, sizeof(be_id), "%lu", d->bdomid);
    snprintf(dev_s, sizeof(dev_s), "%lu", d->devid);
    const char *mode = strcmp(d->access, "ro") == 0 ? "r" : "w";
    const char *const be_keys[][2] = {
        { "frontend", d->fe }, { "params", d->target }, { "script", "/etc/xen/scripts/block-memx" },
        { "frontend-id", fe_id }, { "online", "1" }, { "removable", "0" }, { "bootable", "1" },
        { "state", "1" }, { "dev", d->name }, { "type", "phy" }, { "mode", mode },
        { "device-type", "disk" }, { "discard-enable", "1" }, { "specification", "xen" },
    };
    const char *const fe_keys[][2] = {
        { "backend", d->be }, { "backend-id", be_id }, { "state", "1" },
        { "virtual-device", dev_s }, { "device-type", "disk" }, { "trusted", "1" },
    };
    char path[256];
    for (;;) {
        xp_txn_t t = xp_xs_txn_start(xp);
        if (!t)
            return -1;
        int bad = 0;
        /* Leftovers of an earlier device go; ENOENT (no parent) is fine. */
        xp_xs_rm(xp, t, d->be);
        xp_xs_rm(xp, t, d->fe);
        bad |= xp_xs_mkdir(xp, t, d->be) | xp_xs_mkdir(xp, t, d->fe);
        /* The backend domain owns its directory and the guest may read it;
         * the guest owns its frontend directory and the backend may read it. */
        bad |= xp_xs_set_perms_rw(xp, t, d->be, (uint16_t)d->bdomid, (uint16_t)d->domid);
        bad |= xp_xs_set_perms_rw(xp, t, d->fe, (uint16_t)d->domid, (uint16_t)d->bdomid);
        for (size_t i = 0; i < sizeof(be_keys) / sizeof(be_keys[0]); i++) {
            snprintf(path, sizeof(path), "%s/%s", d->be, be_keys[i][0]);
            bad |= xp_xs_write(xp, t, path, be_keys[i][1]);
        }
        for (size_t i = 0; i < sizeof(fe_keys) / sizeof(fe_keys[0]); i++) {
            snprintf(path, sizeof(path), "%s/%s", d->fe, fe_keys[i][0]);
            bad |= xp_xs_write(xp, t, path, fe_keys[i][1]);
        }
        if (bad) {
            int e = errno;
            xp_xs_txn_end(xp, t, true);
            errno = e;
            return -1;
        }
        if (xp_xs_txn_end(xp, t, false) == 0)
            return 0;
        if (errno != EAGAIN)
            return -1;
    }
}

static int cmd_device(struct xp *xp, bool create, int argc, char **argv)
{
    static const struct option opts[] = {
        { "domid", required_argument, NULL, 'd' },
        { "vdev", required_argument, NULL, 'v' },
        { "target", required_argument, NULL, 't' },
        { "backend-domid", required_argument, NULL, 'b' },
        { "type", required_argument, NULL, 'T' },
        { "access", required_argument, NULL, 'a' },
        { "timeout", required_argument, NULL, 'w' },
        { NULL, 0, NULL, 0 },
    };
    struct dev d = { .type = "vbd", .access = "rw", .timeout_ms = 10000, .domid = ~0ul };
    const char *vdev = NULL;
    unsigned long v;
    int o;
    optind = 1;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'd':
            if (parse_uint(optarg, 0x7fef, &d.domid) < 0 || d.domid == 0) {
                fprintf(stderr, "%s: --domid: '%s' is not a guest domain id (1-32751)\n", prog, optarg);
                return 2;
            }
            break;
        case 'v': vdev = optarg; break;
        case 't': d.target = optarg; break;
        case 'b':
            if (parse_uint(optarg, 0x7fef, &d.bdomid) < 0) {
                fprintf(stderr, "%s: --backend-domid: '%s' is not a domain id\n", prog, optarg);
                return 2;
            }
            break;
        case 'T':
            if (strcmp(optarg, "vbd") && strcmp(optarg, "vbd3")) {
                fprintf(stderr, "%s: --type: '%s' is not vbd or vbd3\n", prog, optarg);
                return 2;
            }
            d.type = optarg;
            break;
        case 'a':
            if (strcmp(optarg, "rw") && strcmp(optarg, "ro")) {
                fprintf(stderr, "%s: --access: '%s' is not rw or ro\n", prog, optarg);
                return 2;
            }
            d.access = optarg;
            break;
        case 'w':
            if (parse_uint(optarg, 3600, &v) < 0) {
                fprintf(stderr, "%s: --timeout: '%s' is not a number of seconds\n", prog, optarg);
                return 2;
            }
            d.timeout_ms = (int)v * 1000;
            break;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (d.domid == ~0ul || !vdev || (create && !d.target) || optind != argc) {
        fprintf(stderr, "%s: %s needs --domid and --vdev%s\n", prog, create ? "create" : "destroy",
                create ? " and --target" : "");
        return 2;
    }
    if (parse_vdev(vdev, &d.devid, d.name, sizeof(d.name)) < 0) {
        fprintf(stderr, "%s: --vdev: '%s' is not xvdX or a device number\n", prog, vdev);
        return 2;
    }
    snprintf(d.be, sizeof(d.be), "/local/domain/%lu/backend/%s/%lu/%lu", d.bdomid, d.type, d.domid, d.devid);
    snprintf(d.fe, sizeof(d.fe), "/local/domain/%lu/device/vbd/%lu", d.domid, d.devid);
    char state[160], *last = NULL;
    snprintf(state, sizeof(state), "%s/state", d.be);

    if (create) {
        if (write_device(xp, &d) < 0) {
            fprintf(stderr, "%s: writing %s: %s\n", prog, d.be, strerror(errno));
            return 1;
        }
        if (wait_node(xp, state, backend_ready, NULL, d.timeout_ms, &last) < 0) {
            fprintf(stderr, "%s: backend %s did not reach InitWait (state 2) within %d s (state=%s); device removed\n",
                    prog, d.be, d.timeout_ms / 1000, last ? last : "none");
            free(last);
            rm_both(xp, &d);
            return 1;
        }
        free(last);
        printf("created dom%lu %s (%lu): %s\n", d.domid, d.name, d.devid, d.be);
        return 0;
    }

    char *cur = xp_xs_read(xp, XP_TXN_NULL, state, NULL);
    if (!cur) {
        fprintf(stderr, "%s: no device %s\n", prog, d.be);
        return 1;
    }
    free(cur);
    char online[160];
    snprintf(online, sizeof(online), "%s/online", d.be);
    for (;;) {
        xp_txn_t t = xp_xs_txn_start(xp);
        if (!t || xp_xs_write(xp, t, online, "0") < 0 || xp_xs_write(xp, t, state, "5") < 0) {
            fprintf(stderr, "%s: closing %s: %s\n", prog, d.be, strerror(errno));
            if (t)
                xp_xs_txn_end(xp, t, true);
            return 1;
        }
        if (xp_xs_txn_end(xp, t, false) == 0)
            break;
        if (errno != EAGAIN) {
            fprintf(stderr, "%s: closing %s: %s\n", prog, d.be, strerror(errno));
            return 1;
        }
    }
    int rc = 0;
    if (wait_node(xp, state, is_value, "6", d.timeout_ms, &last) < 0) {
        /* libxl removes the nodes anyway after its 10 s. */
        fprintf(stderr, "%s: backend %s did not reach Closed (state 6) within %d s (state=%s); removed anyway\n",
                prog, d.be, d.timeout_ms / 1000, last ? last : "none");
        rc = 1;
    }
    free(last);
    if (rm_both(xp, &d) < 0) {
        fprintf(stderr, "%s: removing %s: %s\n", prog, d.be, strerror(errno));
        return 1;
    }
    if (rc == 0)
        printf("destroyed dom%lu %s (%lu)\n", d.domid, d.name, d.devid);
    return rc;
}

static void ls_tree(struct xp *xp, const char *path, int depth)
{
    unsigned n = 0;
    char **kids = xp_xs_directory(xp, XP_TXN_NULL, path, &n);
    if (!kids)
        return;
    for (unsigned i = 0; i < n; i++) {
        char child[4096];
        snprintf(child, sizeof(child), "%s%s%s", path, strcmp(path, "/") ? "/" : "", kids[i]);
        char *v = xp_xs_read(xp, XP_TXN_NULL, child, NULL);
        printf("%*s%s = \"%s\"\n", depth * 1, "", kids[i], v ? v : "");
        free(v);
        ls_tree(xp, child, depth + 1);
    }
    free(kids);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "dir", required_argument, NULL, 'd' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    const char *dir = getenv("MEMX_SIM_DIR");
    int o;
    while ((o = getopt_long(argc, argv, "+d:hV", opts, NULL)) != -1) {
        switch (o) {
        case 'd': dir = optarg; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("memx-simxl %s\n", PACKAGE_VERSION); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "%s: a command is needed (create, destroy, ls, read, write, wait)\n", prog);
        return 2;
    }
    if (!dir) {
        fprintf(stderr, "%s: --dir is required (or set MEMX_SIM_DIR)\n", prog);
        return 2;
    }
    mx_log_init(prog, MX_LOG_WARN);
    const char *cmd = argv[optind];
    int cargc = argc - optind;
    char **cargv = argv + optind;
    bool known = !strcmp(cmd, "create") || !strcmp(cmd, "destroy") || !strcmp(cmd, "ls") ||
                 !strcmp(cmd, "read") || !strcmp(cmd, "write") || !strcmp(cmd, "wait");
    if (!known) {
        fprintf(stderr, "%s: unknown command '%s'\n", prog, cmd);
        return 2;
    }
    struct xp *xp = xp_open_sim(dir, 0);
    if (!xp) {
        fprintf(stderr, "%s: cannot reach memx-simxsd in %s: %s\n", prog, dir, strerror(errno));
        return 1;
    }
    int rc = 0;
    if (!strcmp(cmd, "create") || !strcmp(cmd, "destroy")) {
        rc = cmd_device(xp, cmd[0] == 'c', cargc, cargv);
    } else if (!strcmp(cmd, "ls")) {
        if (cargc > 2) {
            fprintf(stderr, "%s: ls takes at most one PATH\n", prog);
            rc = 2;
        } else
            ls_tree(xp, cargc == 2 ? cargv[1] : "/", 0);
    } else if (!strcmp(cmd, "read")) {
        char *v = cargc == 2 ? xp_xs_read(xp, XP_TXN_NULL, cargv[1], NULL) : NULL;
        if (cargc != 2) {
            fprintf(stderr, "%s: read takes one PATH\n", prog);
            rc = 2;
        } else if (!v) {
            fprintf(stderr, "%s: read %s: %s\n", prog, cargv[1], strerror(errno));
            rc = 1;
        } else
            printf("%s\n", v);
        free(v);
    } else if (!strcmp(cmd, "write")) {
        if (cargc != 3) {
            fprintf(stderr, "%s: write takes PATH VALUE\n", prog);
            rc = 2;
        } else if (xp_xs_write(xp, XP_TXN_NULL, cargv[1], cargv[2]) < 0) {
            fprintf(stderr, "%s: write %s: %s\n", prog, cargv[1], strerror(errno));
            rc = 1;
        }
    } else {
        unsigned long secs = 10;
        if (cargc == 5 && !strcmp(cargv[3], "--timeout")) {
            if (parse_uint(cargv[4], 3600, &secs) < 0) {
                fprintf(stderr, "%s: --timeout: '%s' is not a number of seconds\n", prog, cargv[4]);
                rc = 2;
            }
        } else if (cargc != 3) {
            fprintf(stderr, "%s: wait takes PATH VALUE [--timeout S]\n", prog);
            rc = 2;
        }
        char *last = NULL;
        if (rc == 0 && wait_node(xp, cargv[1], is_value, cargv[2], (int)secs * 1000, &last) < 0) {
            fprintf(stderr, "%s: %s is \"%s\", not \"%s\", after %lu s\n", prog, cargv[1],
                    last ? last : "(absent)", cargv[2], secs);
            rc = 1;
        }
        free(last);
    }
    xp_close(xp);
    return rc;
}
