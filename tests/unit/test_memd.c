/* memx-memd as a process: CLI errors, start-up, clean SIGTERM; hostile
 * peers (memd_client.h): a HELLO without the key claiming a backend's address
 * or identity, replayed and tampered messages after the handshake. */
#include "cu_main.h"
#include "evloop.h"
#include "log.h"
#include "memd_client.h"

#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* spawn API (test_memd_spawn.c) */
struct memd_proc { pid_t pid; int port; char addr[32]; char log[64]; };
int spawn_write_key(char *path, size_t len, unsigned char raw[32]);
int spawn_memd(struct memd_proc *m, const char *key_path, const char *cap, const char *slab);
int spawn_stop(struct memd_proc *m, int sig);
int spawn_log_has(const struct memd_proc *m, const char *s);
int spawn_log_count(const struct memd_proc *m, const char *s);
void spawn_kill_all(void);
extern const char *spawn_cluster_extra;

static int run(const char *args, char *out, size_t len)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "%s/memx-memd %s 2>&1", MEMX_BUILDDIR, args);
    FILE *f = popen(cmd, "r");
    size_t n = fread(out, 1, len - 1, f);
    out[n] = 0;
    int st = pclose(f);
    return WEXITSTATUS(st);
}

static void test_cli(void)
{
    char out[4096];
    CU_ASSERT_EQUAL(run("--help", out, sizeof(out)), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "--capacity"));
    CU_ASSERT_EQUAL(run("--capacity 4Q --key-file /dev/null", out, sizeof(out)), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "capacity"));
    CU_ASSERT_EQUAL(run("--listen nohostport", out, sizeof(out)), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "listen"));
    CU_ASSERT_EQUAL(run("--key-file /nonexistent/key", out, sizeof(out)), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "key_file"));
    CU_ASSERT_EQUAL(run("--bogus", out, sizeof(out)), 2);
}

static void test_start_stop(void)
{
    char key[64];
    unsigned char raw[32];
    CU_ASSERT_EQUAL_FATAL(spawn_write_key(key, sizeof(key), raw), 0);
    struct memd_proc m;
    CU_ASSERT_EQUAL_FATAL(spawn_memd(&m, key, "4M", "1M"), 0);
    CU_ASSERT_TRUE(spawn_log_has(&m, "serving 4M in 4 slabs of 1M over tcp;ofi_rxm"));
    CU_ASSERT_EQUAL(spawn_stop(&m, SIGTERM), 0);
    CU_ASSERT_TRUE(spawn_log_has(&m, "stopped"));
    CU_ASSERT_EQUAL_FATAL(spawn_memd(&m, key, "4M", "1M"), 0);
    CU_ASSERT_EQUAL(spawn_stop(&m, SIGINT), 0);
    unlink(key);
    spawn_kill_all();
}

/* A STATS round trip of c (req_id id): whether the server answered it. */
static bool stats_ok(struct mc *c, uint64_t id)
{
    struct proto_msg q = { .type = PROTO_STATS, .req_id = id }, r;
    return mc_send(c, &q, NULL, NULL) && mc_wait(c, PROTO_STATS_R, id, 2000, &r) == 0 && r.status == 0;
}

/* Item 10: a peer without the key sends HELLOs claiming an authenticated
 * backend's endpoint name and identity (fresh, so its slabs would go too):
 * the backend's session and its slab survive, and the refusal is logged. */
static void test_spoofed_hello(void)
{
    char key[64];
    unsigned char raw[32], wrong[32];
    CU_ASSERT_EQUAL_FATAL(spawn_write_key(key, sizeof(key), raw), 0);
    struct memd_proc m;
    CU_ASSERT_EQUAL_FATAL(spawn_memd(&m, key, "4M", "1M"), 0);
    struct mc *a = mc_open(m.addr), *b = mc_open(m.addr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_EQUAL_FATAL(mc_handshake(a, "backd@victim", raw), 0);
    struct proto_msg q = { .type = PROTO_SLAB_ALLOC, .req_id = 1 }, r;
    q.u.slab_alloc.uid = 42;
    CU_ASSERT_FATAL(mc_send(a, &q, NULL, NULL) > 0);
    CU_ASSERT_EQUAL_FATAL(mc_wait(a, PROTO_SLAB_ALLOC_R, 1, 2000, &r), 0);
    CU_ASSERT_EQUAL(r.status, 0);
    CU_ASSERT_TRUE(stats_ok(a, 2));

    uint8_t victim[PROTO_ADDR_MAX];
    size_t vl = mc_name(a, victim);
    CU_ASSERT_FATAL(vl > 0);
    for (int i = 0; i < 5; i++)
        CU_ASSERT_EQUAL(mc_hello(b, "backd@victim", PROTO_HELLO_FRESH, victim, vl), 0);
    /* And one that finishes the handshake under the victim's name, with the wrong key. */
    memset(wrong, 0x5a, sizeof(wrong));
    CU_ASSERT_NOT_EQUAL(mc_handshake(b, "backd@victim", wrong), 0);
    CU_ASSERT_TRUE(stats_ok(a, 3));
    q.type = PROTO_SLAB_FIND;
    q.req_id = 4;
    CU_ASSERT_FATAL(mc_send(a, &q, NULL, NULL) > 0);
    CU_ASSERT_EQUAL_FATAL(mc_wait(a, PROTO_SLAB_FIND_R, 4, 2000, &r), 0);
    CU_ASSERT_EQUAL(r.status, 0);
    CU_ASSERT_TRUE(r.u.slab_find_r.mine);
    CU_ASSERT_TRUE(spawn_log_has(&m, "wrong cluster key"));
    mc_close(a);
    mc_close(b);
    CU_ASSERT_EQUAL(spawn_stop(&m, SIGTERM), 0);
    unlink(key);
}

/* A HELLO naming an address nobody answers at (the server sends its
 * CHALLENGE there, and the transport keeps trying) must not hold up the
 * answers to a backend in session. */
static void test_hello_dead_address(void)
{
    char key[64];
    unsigned char raw[32];
    CU_ASSERT_EQUAL_FATAL(spawn_write_key(key, sizeof(key), raw), 0);
    struct memd_proc m;
    CU_ASSERT_EQUAL_FATAL(spawn_memd(&m, key, "4M", "1M"), 0);
    struct mc *a = mc_open(m.addr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL_FATAL(mc_handshake(a, "backd@a", raw), 0);
    uint8_t name[PROTO_ADDR_MAX];
    size_t nl = mc_name(a, name);
    CU_ASSERT_FATAL(nl >= 16);
    for (int i = 0; i < 40; i++) {
        struct mc *b = mc_open(m.addr);
        CU_ASSERT_PTR_NOT_NULL_FATAL(b);
        uint8_t dead[PROTO_ADDR_MAX];
        memcpy(dead, name, nl);
        /* sockaddr_in: the port of a (likely) closed port on loopback, and an unrouted address */
        dead[2] = 0;
        dead[3] = (uint8_t)(1 + i);
        if (i % 2) {
            dead[4] = 10; dead[5] = 255; dead[6] = 255; dead[7] = (uint8_t)i;
        }
        CU_ASSERT_EQUAL(mc_hello(b, "x", 0, dead, nl), 0);
        struct proto_msg r;
        mc_wait(b, PROTO_CHALLENGE, 0, 10, &r);
        mc_close(b);
    }
    uint64_t t0 = evloop_now_ms();
    for (int i = 0; i < 20; i++)
        CU_ASSERT_TRUE(stats_ok(a, 10 + (uint64_t)i));
    uint64_t took = evloop_now_ms() - t0;
    printf("\n    20 STATS round trips after 40 HELLOs naming dead addresses: %llu ms\n", (unsigned long long)took);
    CU_ASSERT_TRUE(took < 1000);
    mc_close(a);
    CU_ASSERT_EQUAL(spawn_stop(&m, SIGTERM), 0);
    unlink(key);
}

/* Item 10: HELLOs without the key claiming a backend's address while that
 * backend is in the middle of its own handshake (reconnecting) do not spoil
 * it: its AUTH still answers its own CHALLENGE. */
static void test_spoof_mid_handshake(void)
{
    char key[64];
    unsigned char raw[32];
    CU_ASSERT_EQUAL_FATAL(spawn_write_key(key, sizeof(key), raw), 0);
    struct memd_proc m;
    CU_ASSERT_EQUAL_FATAL(spawn_memd(&m, key, "4M", "1M"), 0);
    struct mc *a = mc_open(m.addr), *b = mc_open(m.addr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    struct proto_msg ch;
    CU_ASSERT_EQUAL_FATAL(mc_hello(a, "backd@victim", 0, NULL, 0), 0);
    CU_ASSERT_EQUAL_FATAL(mc_wait(a, PROTO_CHALLENGE, 0, 3000, &ch), 0);
    uint8_t victim[PROTO_ADDR_MAX];
    size_t vl = mc_name(a, victim);
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(mc_hello(b, "backd@victim", PROTO_HELLO_FRESH, victim, vl), 0);
    /* Let the server take them in before the victim's AUTH. */
    struct proto_msg r;
    mc_wait(b, PROTO_WELCOME, 0, 300, &r);
    CU_ASSERT_EQUAL(mc_auth(a, &ch, raw), 0);
    CU_ASSERT_TRUE(stats_ok(a, 5));
    CU_ASSERT_FALSE(spawn_log_has(&m, "wrong cluster key"));
    mc_close(a);
    mc_close(b);
    CU_ASSERT_EQUAL(spawn_stop(&m, SIGTERM), 0);
    unlink(key);
}

/* Item 10: after the handshake a message the server saw already (replayed)
 * or one changed on the way (tampered) is dropped, and said so in the log at
 * a bounded rate; the session goes on. */
static void test_replay_tamper(void)
{
    char key[64];
    unsigned char raw[32];
    CU_ASSERT_EQUAL_FATAL(spawn_write_key(key, sizeof(key), raw), 0);
    struct memd_proc m;
    CU_ASSERT_EQUAL_FATAL(spawn_memd(&m, key, "4M", "1M"), 0);
    struct mc *a = mc_open(m.addr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL_FATAL(mc_handshake(a, "backd@a", raw), 0);
    struct proto_msg q = { .type = PROTO_SLAB_ALLOC, .req_id = 1 }, r;
    q.u.slab_alloc.uid = 7;
    CU_ASSERT_FATAL(mc_send(a, &q, NULL, NULL) > 0);
    CU_ASSERT_EQUAL_FATAL(mc_wait(a, PROTO_SLAB_ALLOC_R, 1, 2000, &r), 0);
    CU_ASSERT_EQUAL_FATAL(r.status, 0);
    uint32_t slab = r.u.slab_alloc_r.slab;

    static uint8_t page[PROTO_PAGE_SIZE], sent[PROTO_WRITE_MAX];
    memset(page, 0xab, sizeof(page));
    struct proto_msg w = { .type = PROTO_PAGE_WRITE, .req_id = 2 };
    w.u.page.slab = slab;
    w.u.page.page = 3;
    size_t len = mc_send(a, &w, page, sent);
    CU_ASSERT_FATAL(len > 0);
    CU_ASSERT_EQUAL_FATAL(mc_wait(a, PROTO_PAGE_WRITE_R, 2, 2000, &r), 0);
    CU_ASSERT_EQUAL(r.status, 0);
    /* The same bytes again: a replay. */
    CU_ASSERT_EQUAL(mc_send_raw(a, sent, len), 0);
    CU_ASSERT_NOT_EQUAL(mc_wait(a, PROTO_PAGE_WRITE_R, 2, 500, &r), 0);
    /* A new write with one data byte changed on the way, many times over. */
    for (int i = 0; i < 40; i++) {
        w.req_id = 100 + (uint64_t)i;
        len = mc_build(a, &w, page, sent);
        CU_ASSERT_FATAL(len > 0);
        sent[len - 1] ^= 1;
        CU_ASSERT_EQUAL(mc_send_raw(a, sent, len), 0);
    }
    CU_ASSERT_NOT_EQUAL(mc_wait(a, PROTO_PAGE_WRITE_R, 0, 500, &r), 0);
    /* A correct one is accepted, and so is everything after it. */
    w.req_id = 200;
    CU_ASSERT_FATAL(mc_send(a, &w, page, NULL) > 0);
    CU_ASSERT_EQUAL(mc_wait(a, PROTO_PAGE_WRITE_R, 200, 2000, &r), 0);
    CU_ASSERT_EQUAL(r.status, 0);
    CU_ASSERT_TRUE(stats_ok(a, 201));
    int logged = spawn_log_count(&m, "fails authentication");
    CU_ASSERT_TRUE(logged >= 1 && logged <= 3);
    mc_close(a);
    CU_ASSERT_EQUAL(spawn_stop(&m, SIGTERM), 0);
    unlink(key);
}

/* A throw-away etcd (tests/etcd.sh) for the etcd-mode test; stopped by
 * suite_clean whatever happened. */
static char etcd_url[128], etcd_dir[256];
static pid_t etcd_pid;

static int etcd_up(void)
{
    char cmd[512], out[512] = "";
    snprintf(cmd, sizeof(cmd), "bash -c '. %s/tests/etcd.sh && etcd_start memd-unit >&2 && "
             "echo \"$MEMX_ETCD $ETCD_PID $ETCD_DIR\"'", MEMX_SRCDIR);
    FILE *f = popen(cmd, "r");
    if (!f)
        return -1;
    size_t n = fread(out, 1, sizeof(out) - 1, f);
    out[n] = 0;
    pclose(f);
    int pid = 0;
    if (sscanf(out, "%127s %d %255s", etcd_url, &pid, etcd_dir) != 3 || pid <= 0)
        return -1;
    etcd_pid = pid;
    return 0;
}

static void etcd_down(void)
{
    if (etcd_pid > 0) {
        kill(etcd_pid, SIGKILL);
        for (int i = 0; i < 100 && kill(etcd_pid, 0) == 0; i++)
            usleep(20000);
        etcd_pid = 0;
    }
    if (etcd_dir[0]) {
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", etcd_dir);
        if (system(cmd))
            fprintf(stderr, "test_memd: cannot remove %s\n", etcd_dir);
        etcd_dir[0] = 0;
    }
}

/* A page write of one page from c to slab under (vid, epoch); its status, or -1 when unanswered. */
static int etcd_write(struct mc *c, uint32_t slab, uint64_t vid, uint64_t epoch, uint64_t id)
{
    static uint8_t page[PROTO_PAGE_SIZE];
    memset(page, (int)(id & 0xff), sizeof(page));
    struct proto_msg w = { .type = PROTO_PAGE_WRITE, .req_id = id }, r;
    w.u.page.slab = slab;
    w.u.page.page = 1;
    w.u.page.vid = vid;
    w.u.page.epoch = epoch;
    if (!mc_send(c, &w, page, NULL) || mc_wait(c, PROTO_PAGE_WRITE_R, id, 3000, &r))
        return -1;
    return r.status;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A memd in etcd mode on a fresh etcd; the etcd key's value lands in val. */
static int etcd_memd(struct memd_proc *m, const char *key)
{
    static char extra[512];
    if (etcd_pid <= 0 && etcd_up())
        return -1;
    snprintf(extra, sizeof(extra), "etcd = %s\netcd_prefix = /memx/unit\netcd_lease_ttl = 5\n", etcd_url);
    spawn_cluster_extra = extra;
    int rc = spawn_memd(m, key, "4M", "1M");
    spawn_cluster_extra = NULL;
    return rc;
}

/* servers/<addr>'s value in etcd ("" when absent). */
static void etcd_server_val(const struct memd_proc *m, char *out, size_t len)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "ETCDCTL_API=3 etcdctl --endpoints %s get --print-value-only /memx/unit/servers/%s",
             etcd_url, m->addr);
    FILE *f = popen(cmd, "r");
    size_t n = f ? fread(out, 1, len - 1, f) : 0;
    out[n] = 0;
    if (f)
        pclose(f);
}

/* SIGTERM drains: the key says "draining", no new slab is handed out, and
 * the server waits until its last slab is freed; then the key goes, exit 0. */
static void test_etcd_drain(void)
{
    char key[64], val[1024] = "";
    unsigned char raw[32];
    CU_ASSERT_EQUAL_FATAL(spawn_write_key(key, sizeof(key), raw), 0);
    struct memd_proc m;
    CU_ASSERT_EQUAL_FATAL(etcd_memd(&m, key), 0);
    struct mc *a = mc_open(m.addr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL_FATAL(mc_handshake(a, "backd@a", raw), 0);
    struct proto_msg q = { .type = PROTO_SLAB_ALLOC, .req_id = 1 }, r;
    q.u.slab_alloc.uid = 80;
    CU_ASSERT_FATAL(mc_send(a, &q, NULL, NULL) > 0);
    CU_ASSERT_EQUAL_FATAL(mc_wait(a, PROTO_SLAB_ALLOC_R, 1, 2000, &r), 0);
    CU_ASSERT_EQUAL_FATAL(r.status, 0);
    uint32_t slab = r.u.slab_alloc_r.slab;
    for (int i = 0; i < 40 && !strstr(val, "\"up\""); i++, usleep(50000))
        etcd_server_val(&m, val, sizeof(val));
    CU_ASSERT_PTR_NOT_NULL(strstr(val, "\"state\":\"up\""));
    kill(m.pid, SIGTERM);
    val[0] = 0;
    for (int i = 0; i < 40 && !strstr(val, "draining"); i++, usleep(50000))
        etcd_server_val(&m, val, sizeof(val));
    CU_ASSERT_PTR_NOT_NULL(strstr(val, "\"state\":\"draining\""));
    q.req_id = 2;
    q.u.slab_alloc.uid = 81;
    CU_ASSERT_FATAL(mc_send(a, &q, NULL, NULL) > 0);
    CU_ASSERT_EQUAL(mc_wait(a, PROTO_SLAB_ALLOC_R, 2, 2000, &r), 0);
    CU_ASSERT_EQUAL(r.status, ENOSPC);
    usleep(300000);
    CU_ASSERT_EQUAL(waitpid(m.pid, NULL, WNOHANG), 0);          /* still draining */
    struct proto_msg f = { .type = PROTO_SLAB_FREE, .req_id = 3 };
    f.u.slab_free.slab = slab;
    CU_ASSERT_FATAL(mc_send(a, &f, NULL, NULL) > 0);
    CU_ASSERT_EQUAL(mc_wait(a, PROTO_SLAB_FREE_R, 3, 2000, &r), 0);
    CU_ASSERT_EQUAL(r.status, 0);
    int st = -1;
    for (int i = 0; i < 100; i++, usleep(20000))
        if (waitpid(m.pid, &st, WNOHANG) == m.pid)
            break;
    CU_ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    if (WIFEXITED(st))
        m.pid = 0;
    etcd_server_val(&m, val, sizeof(val));
    CU_ASSERT_STRING_EQUAL(val, "");
    CU_ASSERT_TRUE(spawn_log_has(&m, "drained: no connected backend holds a slab here"));
    CU_ASSERT_TRUE(spawn_log_has(&m, "deregistered"));
    mc_close(a);
    if (m.pid > 0)
        spawn_stop(&m, SIGINT);
    unlink(key);
}

/* Issue 14: with [cluster] etcd the server's owner view comes from etcd's
 * owners/ keys (an identity named there before it ever connected), and it
 * takes a write only while it can prove that view recent: etcd gone, writes
 * are refused (EAGAIN) within 2 s while reads are still answered. */
static void test_etcd_fence(void)
{
    char key[64], cmd[1024];
    unsigned char raw[32];
    CU_ASSERT_EQUAL_FATAL(spawn_write_key(key, sizeof(key), raw), 0);
    struct memd_proc m;
    CU_ASSERT_EQUAL_FATAL(etcd_memd(&m, key), 0);
    /* backd@b owns volume 9 under epoch 5, before b ever connected. */
    snprintf(cmd, sizeof(cmd), "ETCDCTL_API=3 etcdctl --endpoints %s put /memx/unit/owners/v "
             "'{\"node\":\"backd@b\",\"vid\":\"0000000000000009\",\"epoch\":5}' >/dev/null", etcd_url);
    CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
    struct mc *a = mc_open(m.addr), *b = mc_open(m.addr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_EQUAL_FATAL(mc_handshake(a, "backd@a", raw), 0);
    CU_ASSERT_EQUAL_FATAL(mc_handshake(b, "backd@b", raw), 0);
    uint32_t slab[2];
    struct mc *cs[2] = { a, b };
    for (int i = 0; i < 2; i++) {
        struct proto_msg q = { .type = PROTO_SLAB_ALLOC, .req_id = 1 }, r;
        q.u.slab_alloc.uid = 70 + (uint64_t)i;
        CU_ASSERT_FATAL(mc_send(cs[i], &q, NULL, NULL) > 0);
        CU_ASSERT_EQUAL_FATAL(mc_wait(cs[i], PROTO_SLAB_ALLOC_R, 1, 2000, &r), 0);
        CU_ASSERT_EQUAL_FATAL(r.status, 0);
        slab[i] = r.u.slab_alloc_r.slab;
    }
    /* Once the watch has shown the key: b's epoch 5 passes, a's is refused. */
    int st = -1;
    for (int i = 0; i < 40 && st != 0; i++, usleep(50000))
        st = etcd_write(b, slab[1], 9, 5, 10 + (uint64_t)i);
    CU_ASSERT_EQUAL(st, 0);
    CU_ASSERT_EQUAL(etcd_write(a, slab[0], 9, 5, 100), EPERM);
    CU_ASSERT_EQUAL(etcd_write(b, slab[1], 9, 4, 101), ESTALE);
    CU_ASSERT_EQUAL(etcd_write(a, slab[0], 11, 1, 102), 0);    /* a volume etcd names no owner of */
    /* etcd goes away: writes are refused within 2 s, reads go on. */
    kill(etcd_pid, SIGKILL);
    uint64_t t0 = now_ms();
    st = 0;
    for (uint64_t id = 200; st == 0 && now_ms() - t0 < 3000; id++, usleep(20000))
        st = etcd_write(b, slab[1], 9, 5, id);
    uint64_t took = now_ms() - t0;
    CU_ASSERT_EQUAL(st, EAGAIN);
    CU_ASSERT_TRUE(took < 2000);
    CU_ASSERT_EQUAL(etcd_write(a, slab[0], 11, 1, 300), EAGAIN);
    struct proto_msg q = { .type = PROTO_PAGE_READ, .req_id = 301 }, r;
    q.u.page.slab = slab[1];
    q.u.page.page = 1;
    CU_ASSERT_FATAL(mc_send(b, &q, NULL, NULL) > 0);
    CU_ASSERT_EQUAL(mc_wait(b, PROTO_PAGE_READ_R, 301, 2000, &r), 0);
    CU_ASSERT_EQUAL(r.status, 0);
    CU_ASSERT_TRUE(spawn_log_has(&m, "cannot prove ownership now"));
    CU_ASSERT_EQUAL(spawn_log_count(&m, "cannot prove ownership now"), 1);
    mc_close(a);
    mc_close(b);
    CU_ASSERT_EQUAL(spawn_stop(&m, SIGINT), 0);
    etcd_down();
    unlink(key);
}

static const struct cu_test tests[] = {
    { "command line errors", test_cli },
    { "start, SIGTERM/SIGINT exit 0", test_start_stop },
    { "a HELLO without the key never ends a session", test_spoofed_hello },
    { "a HELLO without the key never spoils a handshake", test_spoof_mid_handshake },
    { "HELLOs naming dead addresses hold nothing up", test_hello_dead_address },
    { "replayed or tampered messages are dropped", test_replay_tamper },
    { "etcd mode: SIGTERM drains, then deregisters", test_etcd_drain },
    { "etcd mode: owners from etcd; no proof, no writes", test_etcd_fence },
    { NULL, NULL },
};
/* Runs even when a fatal assert ended a test early: no server outlives the suite. */
static int suite_clean(void)
{
    spawn_kill_all();
    etcd_down();
    return 0;
}

static int suite_init(void)
{
    mx_log_init("test_memd", MX_LOG_ERR);
    return 0;
}

static const struct cu_suite suites[] = { { "memd", suite_init, suite_clean, tests }, { NULL, NULL, NULL, NULL } };
CU_MAIN(suites)
