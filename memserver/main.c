/* memx-memd: command line, configuration, signals; the server itself is memd.c. */
#include "config.h"
#include "daemon.h"
#include "evloop.h"
#include "log.h"
#include "memd.h"
#include "metrics_http.h"
#include "sdnotify.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: memx-memd [OPTIONS]\n"
            "Serve this host's RAM to MemX backends, in slabs, to peers holding the cluster key.\n"
            "\n"
            "  -c, --config FILE      configuration file (default %s/memx/memx.conf if it exists)\n"
            "  -l, --listen HOST:PORT address to serve on      ([memserver] listen, default 0.0.0.0:7480)\n"
            "  -C, --capacity SIZE    RAM to contribute, e.g. 4G ([memserver] capacity, default 1G)\n"
            "  -k, --key-file FILE    cluster key, 64 hex chars ([cluster] key_file)\n"
            "  -L, --log-level LEVEL  error, warn, info, debug  ([memserver] log_level, default info)\n"
            "  -h, --help             show this help\n"
            "  -V, --version          print the version and exit\n"
            "\n"
            "The transport is [cluster] provider (tcp;ofi_rxm, or verbs;ofi_rxm on RDMA NICs);\n"
            "slabs are [cluster] slab_size.  Command-line options override the file.\n"
            "SIGTERM or SIGINT shuts the server down; its memory is released.  With [cluster] etcd,\n"
            "SIGTERM first drains it (marked draining in etcd until no backend holds a slab here,\n"
            "at most 60 s); a second SIGTERM, or SIGINT, stops it at once.\n",
            MEMX_SYSCONFDIR);
}

/* SIGTERM drains (in etcd mode); SIGINT, or a second signal, stops at once. */
static void on_signal(struct evloop *el, int fd, unsigned events, void *arg)
{
    struct memd **m = arg;
    static int signals;
    int sig = memx_daemon_signal(fd);
    if (sig) {
        mx_info("memd: %s received, shutting down", strsignal(sig));
        sdn_stopping("%s", sig == SIGTERM && !signals ? "draining, then stopping" : "stopping");
    }
    if (*m)
        memd_shutdown(*m, sig != SIGTERM || signals++ > 0);
    else
        evloop_stop(el);
}

/* The Prometheus exposition ([memserver] metrics_listen). */
static int render_metrics(void *arg, FILE *f)
{
    struct memd **m = arg;
    struct memd_stats st;
    memd_get_stats(*m, &st);
    metrics_family(f, "memx_memd_capacity_bytes", "gauge", "RAM this memory server contributes.");
    fprintf(f, "memx_memd_capacity_bytes %llu\n", (unsigned long long)st.capacity);
    metrics_family(f, "memx_memd_used_bytes", "gauge", "RAM handed out in slabs.");
    fprintf(f, "memx_memd_used_bytes %llu\n", (unsigned long long)st.used);
    metrics_family(f, "memx_memd_slabs", "gauge", "Slabs handed out.");
    fprintf(f, "memx_memd_slabs %u\n", st.slabs);
    metrics_family(f, "memx_memd_sessions", "gauge", "Backends connected.");
    fprintf(f, "memx_memd_sessions %u\n", st.sessions);
    return ferror(f) ? -1 : 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "listen", required_argument, NULL, 'l' },
        { "capacity", required_argument, NULL, 'C' },
        { "key-file", required_argument, NULL, 'k' },
        { "log-level", required_argument, NULL, 'L' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    const char *config = NULL, *listen = NULL, *capacity = NULL, *key_file = NULL, *level = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "c:l:C:k:L:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 'l': listen = optarg; break;
        case 'C': capacity = optarg; break;
        case 'k': key_file = optarg; break;
        case 'L': level = optarg; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("memx-memd %s\n", PACKAGE_VERSION); return 0;
        default: usage(stderr); return 2;
        }
    }

    const struct memx_cli_override over[] = {
        { listen, "memserver", "listen", "--listen" },
        { capacity, "memserver", "capacity", "--capacity" },
        { key_file, "cluster", "key_file", "--key-file" },
        { level, "memserver", "log_level", "--log-level" },
    };
    struct memx_config cfg;
    char err[512];
    if (memx_daemon_config(&cfg, "memx-memd", argc, argv, config, over, sizeof(over) / sizeof(over[0])))
        return 2;
    mx_log_init("memx-memd", (enum mx_log_level)cfg.memserver_log_level);
    uint8_t key[MEMX_KEY_BYTES];
    if (memx_config_load_key(&cfg, key, err, sizeof(err))) {
        fprintf(stderr, "memx-memd: %s\n", err);
        return 2;
    }

    struct evloop *el = evloop_new();
    struct memd *m = NULL;
    int sfd = el ? memx_daemon_signals(el, on_signal, &m) : -1;
    if (sfd < 0) {
        fprintf(stderr, "memx-memd: cannot set up the event loop: %s\n", strerror(errno));
        return 1;
    }
    m = memd_new(el, &cfg, key, err, sizeof(err));
    explicit_bzero(key, sizeof(key));
    if (!m) {
        fprintf(stderr, "memx-memd: %s\n", err);
        evloop_free(el);
        close(sfd);
        return 1;
    }
    struct metrics_http *mh = NULL;
    if (cfg.memserver_metrics[0] &&
        !(mh = metrics_http_new(el, cfg.memserver_metrics, render_metrics, &m, err, sizeof(err)))) {
        fprintf(stderr, "memx-memd: %s\n", err);
        memd_free(m);
        evloop_free(el);
        close(sfd);
        return 1;
    }
    /* Listening (and registering in etcd, with it): backends may connect. */
    sdn_ready("serving %llu MiB on %s", (unsigned long long)(cfg.capacity >> 20), cfg.listen);
    if (sdn_watchdog_start(el))
        mx_warn("memd %s: cannot feed the systemd watchdog", cfg.listen);
    int rc = evloop_run(el);
    sdn_stopping("stopped");
    metrics_http_free(mh);
    memd_free(m);
    evloop_free(el);
    close(sfd);
    mx_info("memd %s: stopped", cfg.listen);
    return rc ? 1 : 0;
}
