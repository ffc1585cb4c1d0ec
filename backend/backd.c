/* memx-backd: command line, configuration, start-up and shutdown.  The work is
 * done by blkback (the Xen side), volume (the page map) and pool (the memory
 * servers); ctl is the control socket memxctl talks to. */
#include "blkback.h"
#include "ckeys.h"
#include "config.h"
#include "coord.h"
#include "coord_config.h"
#include "ctl.h"
#include "daemon.h"
#include "evloop.h"
#include "log.h"
#include "membership.h"
#include "metrics.h"
#include "metrics_http.h"
#include "ownership.h"
#include "catalog.h"
#include "slabdir.h"
#include "pool.h"
#include "upgrade.h"
#include "pool_config.h"
#include "sdnotify.h"
#include "volumes.h"
#include "xenplat.h"

#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: memx-backd [OPTIONS]\n"
            "Serve MemX volumes to Xen guests as blkif block devices (xen-blkfront),\n"
            "storing their pages on the memory servers registered in etcd ([cluster] etcd;\n"
            "without it, the static [cluster] servers list).\n"
            "\n"
            "  -c, --config FILE          configuration file (default %s/memx/memx.conf if it exists)\n"
            "  -p, --platform real|sim    Xen libraries, or the sim platform ([backend] platform, default real)\n"
            "  -s, --sim-dir DIR          sim platform directory ([sim] dir, default /run/memx/sim)\n"
            "  -d, --domid N              this backend's domain id on sim ([sim] domid, default 0)\n"
            "  -S, --control-socket PATH  control socket for memxctl ([backend] control_socket,\n"
            "                             default /run/memx/backd.sock)\n"
            "  -L, --log-level LEVEL      error, warn, info, debug ([backend] log_level, default info)\n"
            "  -f, --foreground           stay in the foreground; memx-backd never forks, so this is\n"
            "                             also the default (run it under systemd or a supervisor)\n"
            "  -h, --help                 show this help\n"
            "  -V, --version              print the version and exit\n"
            "\n"
            "Command-line options override the file.  SIGTERM or SIGINT closes every device\n"
            "(in-flight I/O is answered first) and exits 0; a second signal exits at once.\n"
            "Volumes keep their pages in the pool until 'memxctl volume delete NAME'.\n"
            "\n"
            "Restarts and upgrades keep the guests' disks: a memx-backd started while guests\n"
            "are connected (after a crash, kill -9 or a stop) resumes every Connected device\n"
            "where its predecessor left it (the ring state is in [backend] state_dir).\n"
            "'memxctl upgrade [--binary PATH]' or SIGUSR2 hands over without a restart: the\n"
            "rings stop being read, in-flight I/O completes (at most %d s), and memx-backd\n"
            "execs PATH (default: the path it was started from) with the same arguments\n"
            "and pid; no device changes state.  If the exec fails it serves on.\n"
            "SIGHUP (or 'memxctl reload') re-reads the file and applies what can change live\n"
            "(log level, nearfull, static servers added) and logs what needs a restart.\n",
            MEMX_SYSCONFDIR, UPGRADE_DRAIN_MS / 1000);
}

struct backd {
    struct evloop *el;
    struct blkback *bb;
    bool stopping;
    struct upgrade *up;
    /* etcd ([cluster] etcd): NULL without */
    struct coord *coord;
    struct membership *ms;
    struct ownership *own;
    struct catalog *cat;
    struct slabdir *sd;
    struct volumes *vols;
    struct pool *pool;
    char node[CK_NODE_MAX];
    bool ready;                 /* told systemd READY=1 */
    bool nearfull_warned;
    /* reload: how the configuration was made, and what it is now */
    struct memx_config *cfg;
    const char *config_path;
    const struct memx_cli_override *over;
    size_t nover;
};

/* ---- reload (SIGHUP, memxctl reload) ----------------------------------------- */

struct reload_diff {
    const struct memx_config *now, *want;
    json_object *applied, *restart;
};

static void on_changed(void *arg, const char *section, const char *key)
{
    struct reload_diff *d = arg;
    char name[96];
    snprintf(name, sizeof(name), "[%s] %s", section, key);
    /* What a running backend can take as it is; the rest waits for a restart
     * (or memxctl upgrade, which re-reads the file). */
    bool live = !strcmp(key, "nearfull") || (!strcmp(section, "backend") && !strcmp(key, "log_level")) ||
                !strcmp(key, "io_hold_s") ||
                (!strcmp(section, "cluster") && !strcmp(key, "servers") && !d->now->etcd[0]);
    json_object_array_add(live ? d->applied : d->restart, json_object_new_string(name));
}

/* Re-reads memx.conf (with the same command-line overrides, which still win)
 * and applies what can change live: the log level, the nearfull threshold,
 * memory servers added to the static list.  A bad file changes nothing. */
static json_object *reload(void *arg)
{
    struct backd *b = arg;
    json_object *r = json_object_new_object();
    struct memx_config *want = calloc(1, sizeof(*want));
    if (!want || memx_config_setup(want, "memx-backd: reload", b->config_path, b->over, b->nover)) {
        free(want);
        json_object_object_add(r, "error", json_object_new_string(
            "the configuration has an error (memx-backd's log says which): nothing changed"));
        mx_warn("backd: reload: the configuration has an error: nothing changed");
        return r;
    }
    struct reload_diff d = { b->cfg, want, json_object_new_array(), json_object_new_array() };
    memx_config_diff(b->cfg, want, on_changed, &d);
    if (want->backend_log_level != b->cfg->backend_log_level) {
        mx_log_set_level((enum mx_log_level)want->backend_log_level);
        b->cfg->backend_log_level = want->backend_log_level;
    }
    b->cfg->nearfull = want->nearfull;
    b->nearfull_warned = false;
    b->cfg->io_hold_s = want->io_hold_s;
    volumes_set_io_hold(b->vols, (unsigned)want->io_hold_s * 1000);
    if (!b->cfg->etcd[0]) {
        for (int i = 0; i < want->nservers; i++) {
            bool known = false;
            for (int k = 0; k < b->cfg->nservers && !known; k++)
                known = !strcmp(want->servers[i], b->cfg->servers[k]);
            char err[256];
            if (!known && pool_add_server(b->pool, want->servers[i], err, sizeof(err)) < 0)
                mx_warn("backd: reload: memory server %s not added: %s", want->servers[i], err);
            else if (!known)
                mx_info("backd: reload: memory server %s added", want->servers[i]);
        }
        for (int k = 0; k < b->cfg->nservers; k++) {
            bool kept = false;
            for (int i = 0; i < want->nservers && !kept; i++)
                kept = !strcmp(want->servers[i], b->cfg->servers[k]);
            if (!kept)
                mx_warn("backd: reload: memory server %s is no longer listed: it stays in use until a restart "
                        "(memxctl pool drain %s moves its replicas away first)", b->cfg->servers[k], b->cfg->servers[k]);
        }
        memcpy(b->cfg->servers, want->servers, sizeof(want->servers));
        b->cfg->nservers = want->nservers;
    }
    mx_info("backd: configuration reloaded: applied %s; needs a restart: %s",
            json_object_to_json_string_ext(d.applied, JSON_C_TO_STRING_PLAIN),
            json_object_to_json_string_ext(d.restart, JSON_C_TO_STRING_PLAIN));
    json_object_object_add(r, "applied", d.applied);
    json_object_object_add(r, "restart", d.restart);
    free(want);
    return r;
}


/* ---- systemd --------------------------------------------------------------- */

/* READY=1 once XenStore is watched (blkback_start) and a memory server
 * answers: xendomains, ordered after us, then starts guests whose disks can
 * be served.  Then a STATUS line every few seconds for `systemctl status`. */
static int status_tick(struct evloop *el, long long id, void *arg)
{
    struct backd *b = arg;
    (void)el;
    (void)id;
    int live = pool_live_servers(b->pool);
    struct pool_stats ps;
    pool_get_stats(b->pool, &ps);
    int ndev = blkback_list(b->bb, NULL, 0);
    const char *state = ps.lost_slabs ? "pages lost" : ps.degraded_slabs ? "degraded" : "ok";
    uint64_t cap = 0, used = 0;
    int n = pool_get_servers(b->pool, NULL, 0);
    struct pool_server_info *s = n > 0 ? calloc((size_t)n, sizeof(*s)) : NULL;
    n = s ? pool_get_servers(b->pool, s, n) : 0;
    for (int i = 0; i < n; i++)
        if (!strcmp(s[i].state, "up") || !strcmp(s[i].state, "draining")) {
            cap += s[i].capacity;
            used += s[i].used;
        }
    free(s);
    bool full = cap && used * 100 >= cap * (uint64_t)b->cfg->nearfull;
    if (full && !b->nearfull_warned)
        mx_warn("pool: %llu%% of the memory servers' RAM is in use (nearfull %d%%): writes that need room will "
                "fail once it is full; add memory servers or delete volumes",
                (unsigned long long)(used * 100 / cap), b->cfg->nearfull);
    b->nearfull_warned = full;
    if (!b->ready && live > 0) {
        b->ready = true;
        sdn_ready("%d device(s), %d of %d memory server(s) up, pool %s", ndev, live, ps.servers, state);
    } else if (b->ready && !b->stopping) {
        sdn_status("%d device(s), %d of %d memory server(s) up, pool %s", ndev, live, ps.servers, state);
    }
    return b->ready ? 5000 : 100;
}

/* ---- etcd --------------------------------------------------------------- */

static void on_registered(void *arg, int status, int64_t rev)
{
    struct backd *b = arg;
    (void)rev;
    if (status)
        mx_warn("backd: registering %s in etcd failed: %s (retried with the next lease)", b->node,
                strerror(-status));
}

static void register_backend(struct backd *b)
{
    char key[CK_NODE_MAX + 16], val[160];
    struct ck_backend cb = { .pid = getpid() };
    snprintf(cb.node, sizeof(cb.node), "%s", b->node);
    if (ck_backend_key(b->node, key, sizeof(key)) < 0 || ck_backend_encode(&cb, val, sizeof(val)) < 0 ||
        coord_put(b->coord, key, val, true, on_registered, b) < 0)
        mx_warn("backd: cannot register %s in etcd", b->node);
}

static void on_etcd_health(void *arg, enum coord_health h)
{
    struct backd *b = arg;
    char line[256];
    coord_describe(b->coord, line, sizeof(line));
    if (h == COORD_UP)
        mx_info("backd: etcd %s", line);
    else
        mx_warn("backd: etcd %s%s", line, h == COORD_LEASE_LOST ?
                ": lease lost, writes wait until claims are renewed under a new one" :
                ": keepalives failing, writes stop before the lease could expire");
    ownership_health(b->own, h);
    if (h == COORD_UP)
        register_backend(b);
}

static void on_claim_changed(void *arg, const char *volume, uint64_t epoch)
{
    struct backd *b = arg;
    volumes_claim_changed(b->vols, volume, epoch);
}

static void add_u64(json_object *o, const char *k, uint64_t v)
{
    json_object_object_add(o, k, json_object_new_int64((int64_t)v));
}

static void etcd_status(void *arg, json_object *o)
{
    struct backd *b = arg;
    char line[256];
    json_object_object_add(o, "etcd", json_object_new_string(coord_describe(b->coord, line, sizeof(line))));
    json_object_object_add(o, "membership", json_object_new_string(membership_describe(b->ms, line, sizeof(line))));
    struct coord_stats cs;
    struct slabdir_stats ss;
    coord_get_stats(b->coord, &cs);
    slabdir_get_stats(b->sd, &ss);
    const struct { const char *k; uint64_t v; } t[] = {
        { "requests", cs.requests }, { "failures", cs.failures }, { "bytes_out", cs.bytes_out },
        { "bytes_in", cs.bytes_in }, { "keepalives", cs.keepalives }, { "watch_events", cs.watch_events },
        { "checks", cs.checks },
    }, d[] = {
        { "writes", ss.writes }, { "failures", ss.failures }, { "reads", ss.reads },
        { "lookups", ss.lookups }, { "hits", ss.hits },
    };
    json_object *jt = json_object_new_object(), *jd = json_object_new_object();
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        add_u64(jt, t[i].k, t[i].v);
    for (size_t i = 0; i < sizeof(d) / sizeof(d[0]); i++)
        add_u64(jd, d[i].k, d[i].v);
    json_object_object_add(o, "etcd_traffic", jt);
    json_object_object_add(o, "slab_directory", jd);
}

/* Joins etcd: membership gives the pool its servers, ownership the volumes their claims. */
static int etcd_start(struct backd *b, const struct memx_config *cfg, struct pool *pool, char *err, size_t errlen)
{
    struct coord_opts co;
    snprintf(b->node, sizeof(b->node), "%s", pool_node_id(pool));
    coord_opts_from_config(&co, cfg, b->node);
    b->coord = coord_open(b->el, &co, err, errlen);
    if (!b->coord)
        return -1;
    b->own = ownership_new(b->coord, b->node, on_claim_changed, b);
    b->ms = b->own ? membership_new(b->coord, pool, cfg->provider) : NULL;
    b->sd = b->ms ? slabdir_new(b->el, b->coord, b->node) : NULL;
    b->cat = b->sd ? catalog_new(b->el, b->coord, b->own, b->vols, b->node) : NULL;
    if (!b->cat) {
        snprintf(err, errlen, "etcd: out of memory");
        return -1;
    }
    volumes_set_claimer(b->vols, ownership_ops(b->own));
    pool_set_directory(pool, slabdir_ops(b->sd));
    coord_on_health(b->coord, on_etcd_health, b);
    register_backend(b);
    return 0;
}

static void on_closed(void *arg)
{
    struct backd *b = arg;
    mx_info("backd: every device is closed");
    evloop_stop(b->el);
}

static void on_signal(struct evloop *el, int fd, unsigned events, void *arg)
{
    struct backd *b = arg;
    int sig = memx_daemon_signal(fd);
    if (!sig)
        return;
    if (sig == SIGHUP) {
        sdn_reloading();
        json_object_put(reload(b));
        sdn_ready("configuration reloaded");
        return;
    }
    if (sig == SIGUSR2) {
        if (b->stopping)
            mx_warn("backd: SIGUSR2 while shutting down: no upgrade");
        else
            upgrade_start(b->up, NULL, NULL, NULL);
        return;
    }
    if (b->stopping) {
        mx_warn("backd: %s again: exiting without waiting for devices", strsignal(sig));
        evloop_stop(el);
        return;
    }
    b->stopping = true;
    upgrade_abandon(b->up);
    mx_info("backd: %s received: closing devices", strsignal(sig));
    sdn_stopping("closing every device");
    blkback_shutdown(b->bb, on_closed, b);
}

static void ctl_upgrade(void *arg, const char *binary, void (*reply)(void *, json_object *), void *rarg)
{
    upgrade_start(arg, binary, reply, rarg);    /* refused once upgrade_abandon ran */
}

int main(int argc, char **argv)
{
    /* Before getopt permutes argv: an upgrade execs the same command line
     * (on the stack: the early exits below then leak nothing). */
    char *argv0[argc + 1];
    memcpy(argv0, argv, (size_t)argc * sizeof(*argv));
    argv0[argc] = NULL;
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "platform", required_argument, NULL, 'p' },
        { "sim-dir", required_argument, NULL, 's' },
        { "domid", required_argument, NULL, 'd' },
        { "control-socket", required_argument, NULL, 'S' },
        { "log-level", required_argument, NULL, 'L' },
        { "foreground", no_argument, NULL, 'f' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    const char *config = NULL, *platform = NULL, *sim_dir = NULL, *domid = NULL, *sock = NULL, *level = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "c:p:s:d:S:L:fhV", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 'p': platform = optarg; break;
        case 's': sim_dir = optarg; break;
        case 'd': domid = optarg; break;
        case 'S': sock = optarg; break;
        case 'L': level = optarg; break;
        case 'f': break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("memx-backd %s\n", PACKAGE_VERSION); return 0;
        default:
            fprintf(stderr, "memx-backd: see --help\n");
            return 2;
        }
    }

    const struct memx_cli_override over[] = {
        { platform, "backend", "platform", "--platform" },
        { sim_dir, "sim", "dir", "--sim-dir" },
        { domid, "sim", "domid", "--domid" },
        { sock, "backend", "control_socket", "--control-socket" },
        { level, "backend", "log_level", "--log-level" },
    };
    struct memx_config cfg;
    char err[512];
    if (memx_daemon_config(&cfg, "memx-backd", argc, argv, config, over, sizeof(over) / sizeof(over[0])))
        return 2;
    mx_log_init("memx-backd", (enum mx_log_level)cfg.backend_log_level);

    /* The platform first: off Xen that is the one thing worth saying. */
    struct xp *xp;
    if (strcmp(cfg.platform, "sim") == 0) {
        xp = xp_open_sim(cfg.sim_dir, (uint16_t)cfg.sim_domid);
        if (!xp) {
            fprintf(stderr, "memx-backd: sim platform in %s: %s (is memx-simxsd running there?)\n",
                    cfg.sim_dir, strerror(errno));
            return 1;
        }
    } else {
        xp = xp_open_real();
        if (!xp && errno == ENOENT) {
            fprintf(stderr, "memx-backd: not running in a Xen domain (use --platform sim for testing)\n");
            return 2;
        }
        if (!xp) {
            fprintf(stderr, "memx-backd: cannot open the Xen libraries: %s\n", strerror(errno));
            return 1;
        }
    }

    if (!cfg.state_dir[0]) {
        const char *base = strcmp(cfg.platform, "sim") == 0 ? cfg.sim_dir : "/run/memx";
        if ((size_t)snprintf(cfg.state_dir, sizeof(cfg.state_dir), "%.249s/state", base) >= sizeof(cfg.state_dir) ||
            strlen(base) > 249)
            cfg.state_dir[0] = 0;
    }
    /* The sim dir is the platform's; /run/memx is made here if need be.
     * Without the directory devices run, but a restart cannot resume them. */
    if (strcmp(cfg.platform, "sim") != 0 && !strncmp(cfg.state_dir, "/run/memx/", 10))
        (void)mkdir("/run/memx", 0755);     /* tmpfs: gone after a reboot */
    if (!cfg.state_dir[0] || (mkdir(cfg.state_dir, 0700) < 0 && errno != EEXIST))
        mx_warn("backd: ring state directory %s: %s (a restarted backend will not resume rings)",
                cfg.state_dir, strerror(errno));

    if (cfg.etcd[0] && cfg.nservers) {
        fprintf(stderr, "memx-backd: [cluster] servers and [cluster] etcd exclude each other: with etcd, "
                        "memory servers register themselves (leave servers empty)\n");
        xp_close(xp);
        return 2;
    }
    uint8_t key[MEMX_KEY_BYTES];
    if (memx_config_load_key(&cfg, key, err, sizeof(err))) {
        fprintf(stderr, "memx-backd: %s\n", err);
        xp_close(xp);
        return 2;
    }

    struct backd b = { 0 };
    b.el = evloop_new();
    static const int extra[] = { SIGUSR2, SIGHUP };
    b.cfg = &cfg;
    b.config_path = config;
    b.over = over;
    b.nover = sizeof(over) / sizeof(over[0]);
    int sfd = b.el ? memx_daemon_signals_with(b.el, extra, 2, on_signal, &b) : -1;
    if (sfd >= 0 && !(b.up = upgrade_new(b.el, argc, argv0))) {
        close(sfd);
        sfd = -1;
        errno = ENOMEM;
    }
    if (sfd < 0) {
        fprintf(stderr, "memx-backd: cannot set up the event loop: %s\n", strerror(errno));
        return 1;
    }

    int rc = 1;
    struct volumes *vols = NULL;
    struct ctl *ctl = NULL;
    struct metrics_http *mh = NULL;
    struct pool_opts po;
    pool_opts_from_config(&po, &cfg);
    struct pool *pool = pool_new(b.el, &po, key, err, sizeof(err));
    explicit_bzero(key, sizeof(key));
    if (!pool)
        goto out;
    vols = volumes_new(pool, cfg.dedup);
    if (!vols) {
        snprintf(err, sizeof(err), "cannot set up the volume table");
        goto out;
    }
    volumes_set_io_hold(vols, (unsigned)cfg.io_hold_s * 1000);
    b.vols = vols;
    if (cfg.etcd[0] && etcd_start(&b, &cfg, pool, err, sizeof(err)) < 0)
        goto out;
    b.bb = blkback_new(b.el, xp, vols, &cfg, err, sizeof(err));
    if (!b.bb)
        goto out;
    upgrade_set_blkback(b.up, b.bb);
    struct ctl_ctx ctx = { .vols = vols, .pool = pool, .bb = b.bb, .platform = xp_name(xp),
                           .device_type = cfg.device_type, .provider = cfg.provider,
                           .etcd_status = b.coord ? etcd_status : NULL, .etcd_arg = &b,
                           .upgrade = ctl_upgrade, .upgrade_status = upgrade_status, .upgrade_arg = b.up,
                           .nearfull = &cfg.nearfull, .reload = reload, .reload_arg = &b,
                           .volume_list_all = b.cat ? catalog_list : NULL,
                           .volume_delete_far = b.cat ? catalog_delete : NULL, .catalog_arg = b.cat };
    ctl = ctl_new(b.el, cfg.control_socket, &ctx, err, sizeof(err));
    if (!ctl || (cfg.control_socket_ro[0] && ctl_listen_ro(ctl, cfg.control_socket_ro, err, sizeof(err)) < 0))
        goto out;
    if (cfg.backend_metrics[0] &&
        !(mh = metrics_http_new(b.el, cfg.backend_metrics, backd_metrics_render, &ctx, err, sizeof(err))))
        goto out;
    if (blkback_start(b.bb, err, sizeof(err)) < 0)
        goto out;
    b.pool = pool;
    if (evloop_add_timer(b.el, 0, status_tick, &b) <= 0 || sdn_watchdog_start(b.el)) {
        snprintf(err, sizeof(err), "out of memory (timers)");
        goto out;
    }

    char servers[MEMX_MAX_SERVERS * 130] = "";
    for (int i = 0; i < cfg.nservers; i++)
        snprintf(servers + strlen(servers), sizeof(servers) - strlen(servers), "%s%s", i ? ", " : "",
                 cfg.servers[i]);
    mx_info("backd: version %s, platform %s (domid %u), serving backend/%s, control socket %s",
            PACKAGE_VERSION, xp_name(xp), (unsigned)xp_domid(xp), cfg.device_type, cfg.control_socket);
    if (b.coord)
        mx_info("backd: memory servers from etcd %s (prefix %s), provider %s, %d replica(s), de-duplication %s",
                cfg.etcd, cfg.etcd_prefix, cfg.provider, cfg.replicas, cfg.dedup ? "on" : "off");
    else
        mx_info("backd: pool of %d server(s) [%s], provider %s, %d replica(s), de-duplication %s",
                cfg.nservers, servers, cfg.provider, cfg.replicas, cfg.dedup ? "on" : "off");

    if (evloop_run(b.el) < 0) {
        snprintf(err, sizeof(err), "event loop: %s", strerror(errno));
        goto out;
    }
    mx_info("backd: stopped");
    rc = 0;
out:
    if (rc)
        fprintf(stderr, "memx-backd: %s\n", err);
    metrics_http_free(mh);
    catalog_free(b.cat);        /* before ctl_free: it holds ctl's reply functions */
    ctl_free(ctl);
    upgrade_free(b.up);
    if (b.bb)
        blkback_free(b.bb);
    volumes_free(vols);
    membership_free(b.ms);
    ownership_free(b.own);
    /* Revokes the lease: our owners/ keys go at once, not a TTL later. */
    if (b.coord)
        coord_close(b.coord);
    if (pool)
        pool_set_directory(pool, NULL);
    slabdir_free(b.sd);
    if (pool)
        pool_free(pool);
    xp_close(xp);
    evloop_free(b.el);
    close(sfd);
    return rc;
}
