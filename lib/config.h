/* config.h — the one INI file both daemons read (parsed by libinih).
 *
 * Every key, its default and its meaning is in memx.conf.example; the table in
 * config.c is the single source of truth for names and defaults.  Errors are a
 * single line naming the file, section and key, e.g.
 *   "memx.conf: [memserver] capacity = '4Q': not a size (use e.g. 512M, 4G)"
 * Command-line options override the file through memx_config_set().
 */
#ifndef MEMX_CONFIG_H
#define MEMX_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MEMX_MAX_SERVERS 16
#define MEMX_KEY_BYTES   32

struct memx_config {
    /* [cluster] */
    char key_file[256];                 /* 64 hex chars: the cluster key */
    char provider[64];                  /* libfabric provider, e.g. "tcp;ofi_rxm" */
    char servers[MEMX_MAX_SERVERS][128];/* memory servers, "host:port" */
    int nservers;
    int replicas;                       /* 1..3 */
    uint64_t slab_size;                 /* bytes, multiple of 4 KiB */
    int nearfull;                       /* percent of the pool in use past which health warns (50..99) */
    /* etcd, the source of truth for membership and ownership (coord.h):
     * "" = none (servers come from the static list above: one host, no
     * cross-host fencing).  Comma-separated http:// or https:// URLs. */
    char etcd[512];
    char etcd_prefix[128];              /* this MemX cluster's keys in etcd */
    char etcd_cacert[256], etcd_cert[256], etcd_key[256];  /* TLS (PEM files) */
    int etcd_lease_ttl;                 /* seconds, 5..120 */

    /* [backend] */
    char platform[16];                  /* "real" or "sim" */
    char device_type[16];               /* XenStore backend type: "vbd" or "vbd3" */
    char control_socket[256];
    char control_socket_ro[256];    /* read-only control socket for monitoring (mode 0666); "": none */
    char node_id[48];                   /* who this backend is to the memory servers ("" = backd@hostname) */
    int max_ring_page_order;            /* 0..4 */
    int max_queues;                     /* 1..16 */
    /* 0 (off) .. 512, as config.c enforces: any count is valid blkif (the frontend uses up to it),
     * 512 is one indirect page (2 MiB a request); the ABI's ceiling is 8 pages, 4096. */
    int max_indirect_segments;
    int ring_poll_us;                   /* 0 (events only) .. 1000: after a ring's last answer */
    /* Bytes one device's requests may hold in data buffers past the ones each
     * ring slot keeps (indirect requests); a request that would go over waits
     * for earlier ones to finish (one request alone is always let through). */
    uint64_t device_buffer_max;
    /* Where each device's resumable ring state lives (a directory that
     * outlives the process: tmpfs).  "" = /run/memx/state, or <sim dir>/state
     * on the sim platform (memx-backd fills it in). */
    char state_dir[256];
    bool gather_reads;                  /* reads to a busy server go out gathered, per loop turn */
    bool dedup;
    int io_hold_s;                      /* 0..3600: how long guest I/O waits for unreachable memory servers */
    int backend_log_level;
    char backend_metrics[128];          /* "host:port" of the Prometheus endpoint, "" = off */

    /* [memserver] */
    char listen[128];                   /* "host:port" */
    uint64_t capacity;                  /* bytes */
    char advertise[128];                /* "host:port" backends reach it at, in etcd ("" = listen) */
    int memserver_log_level;
    char memserver_metrics[128];        /* as backend_metrics */

    /* [sim] */
    char sim_dir[256];                  /* sim XenStore socket, grant files, event channels */
    int sim_domid;                      /* this process's domain id on the sim platform */
};

void memx_config_defaults(struct memx_config *c);
/* cb(arg, section, key) for every key whose value differs between a and b
 * (a reload: what changed). */
void memx_config_diff(const struct memx_config *a, const struct memx_config *b,
                      void (*cb)(void *arg, const char *section, const char *key), void *arg);

/* 0 on success; -1 with a one-line message in err. */
int memx_config_load(struct memx_config *c, const char *path, char *err, size_t errlen);
int memx_config_set(struct memx_config *c, const char *section, const char *key, const char *value,
                    char *err, size_t errlen);

/* A command-line option that overrides a config key, e.g. --capacity -> [memserver] capacity. */
struct memx_cli_override {
    const char *value;                  /* NULL: option not given */
    const char *section, *key, *option;
};

/* What every daemon does at start: defaults, then the config file (path, or
 * <sysconfdir>/memx/memx.conf when path is NULL and that file exists), then
 * the overrides given.  On error prints "<prog>: <one line>" to stderr and
 * returns -1. */
int memx_config_setup(struct memx_config *c, const char *prog, const char *path,
                      const struct memx_cli_override *ov, size_t n);

/* Reads the cluster key named by key_file. */
int memx_config_load_key(const struct memx_config *c, uint8_t key[MEMX_KEY_BYTES], char *err,
                         size_t errlen);

/* "4096", "512K", "2G", "1T" (binary units).  0 on success, -1 on a bad string. */
int memx_parse_size(const char *s, uint64_t *out);
/* Writes e.g. "2G" or "768M" or "4096"; returns buf. */
char *memx_format_size(uint64_t bytes, char *buf, size_t len);
/* Splits "host:port" ("[v6]:port" too).  0 on success. */
int memx_split_hostport(const char *s, char *host, size_t hostlen, char *port, size_t portlen);

#endif
