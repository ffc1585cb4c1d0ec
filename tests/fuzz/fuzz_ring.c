/* fuzz_ring.c — libFuzzer target for what a guest controls: the ring page,
 * its indices, request contents and indirect descriptor pages.
 *
 * Runs the real ring.c + blkif_abi.c + vbd.c (+ ports.c) over a fake platform and volume
 * defined here, and traps if the backend ever hands the volume an
 * out-of-range request, grant-copies outside a page, answers a request twice
 * or not at all.
 *
 * Input: byte 0 = flags (bit 0: x86_32 ABI, bit 1: read-only, bit 2:
 * indirect off), bytes 1..4 = req_prod as the guest wrote it, then the ring
 * page (4096 bytes), then the contents of guest pages 1..8.
 *
 * Build and run (clang only; not part of make check): tests/fuzz/run.sh BUILD
 * (tests/fuzz/Makefile.inc); seeds from tests/fuzz/mkcorpus.py.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evloop.h"
#include "log.h"
#include "vbd.h"
#include "volume.h"
#include "xenplat.h"

#define GUEST 1
#define NPAGES 8
#define VOL_BYTES (1u << 20)

static uint8_t guest[NPAGES + 1][XP_PAGE_SIZE];   /* page r is grant ref r; ref 0 invalid */
static uint8_t *ring_page;

#define CHECK(c) do { if (!(c)) {                                                    \
        fprintf(stderr, "CHECK %s line %d\n", #c, __LINE__); __builtin_trap(); } } while (0)

/* ---- fake platform ------------------------------------------------------ */
void *xp_gnt_map(struct xp *xp, uint16_t domid, uint32_t count, const uint32_t *refs, bool writable)
{
    CHECK(count == 1 && domid == GUEST);
    return ring_page;
}
int xp_gnt_unmap(struct xp *xp, void *addr, uint32_t count) { return 0; }
int xp_gnt_copy(struct xp *xp, uint32_t count, struct xp_gcopy *segs)
{
    int rc = 0;
    for (uint32_t i = 0; i < count; i++) {
        struct xp_gcopy *s = &segs[i];
        CHECK(s->domid == GUEST && s->len > 0 && s->offset + s->len <= XP_PAGE_SIZE);
        if (s->ref == 0 || s->ref > NPAGES) {
            s->status = -4;     /* GNTST_bad_gntref */
            rc = -1;
            continue;
        }
        if (s->to_guest)
            memcpy(guest[s->ref] + s->offset, s->local, s->len);
        else
            memcpy(s->local, guest[s->ref] + s->offset, s->len);
        s->status = 0;
    }
    return rc;
}
int xp_evtchn_bind_interdomain(struct xp *xp, uint16_t domid, uint32_t remote_port) { return 5; }
int xp_evtchn_unbind(struct xp *xp, uint32_t port) { return 0; }
int xp_evtchn_notify(struct xp *xp, uint32_t port) { return 0; }

/* ---- fake volume: completions are queued, never run inside the call ----- */
struct pending { volume_cb cb; void *arg; };
static struct pending pend[4096];
static size_t npend;

static void queue(volume_cb cb, void *arg)
{
    CHECK(npend < sizeof(pend) / sizeof(pend[0]));
    pend[npend++] = (struct pending){ cb, arg };
}
static volatile uint8_t sink;
uint64_t volume_size(const struct volume *v) { return VOL_BYTES; }
static void range(uint64_t sector, uint64_t nsect)
{
    CHECK(sector <= VOL_BYTES / 512 && nsect <= VOL_BYTES / 512 - sector);
}
void volume_read(struct volume *v, uint64_t sector, uint32_t nsect, void *buf, volume_cb cb, void *arg)
{
    range(sector, nsect);
    CHECK(nsect > 0);
    memset(buf, 0x5a, (size_t)nsect * 512);
    queue(cb, arg);
}
void volume_write(struct volume *v, uint64_t sector, uint32_t nsect, const void *buf, volume_cb cb,
                  void *arg)
{
    range(sector, nsect);
    CHECK(nsect > 0);
    for (size_t i = 0; i < (size_t)nsect * 512; i += 512)
        sink ^= ((const uint8_t *)buf)[i];  /* touch it: ASan checks the buffer */
    queue(cb, arg);
}
void volume_discard(struct volume *v, uint64_t sector, uint64_t nsect, volume_cb cb, void *arg)
{
    range(sector, nsect);
    queue(cb, arg);
}
void volume_flush(struct volume *v, volume_cb cb, void *arg) { queue(cb, arg); }

/* ---- the target ---------------------------------------------------------- */
static bool fatal_called;
static void on_fatal(void *arg, const char *why) { fatal_called = true; }
static void on_drained(void *arg) {}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct evloop *el;
    if (!el) {
        el = evloop_new();
        mx_log_init("fuzz_ring", MX_LOG_ERR);
        mx_log_set_file(fopen("/dev/null", "w"));
    }
    if (size < 5)
        return 0;
    uint8_t flags = data[0];
    uint32_t req_prod;
    memcpy(&req_prod, data + 1, 4);
    data += 5;
    size -= 5;

    ring_page = aligned_alloc(XP_PAGE_SIZE, XP_PAGE_SIZE);
    memset(ring_page, 0, XP_PAGE_SIZE);
    memcpy(ring_page, data, size < XP_PAGE_SIZE ? size : XP_PAGE_SIZE);
    /* Indices as a guest that just initialised its ring and pushed req_prod. */
    uint32_t hdr[4] = { req_prod, 1, 0, 1 };
    memcpy(ring_page, hdr, sizeof(hdr));
    memset(guest, 0, sizeof(guest));
    if (size > XP_PAGE_SIZE) {
        size_t rest = size - XP_PAGE_SIZE;
        memcpy(guest[1], data + XP_PAGE_SIZE, rest < sizeof(guest) - XP_PAGE_SIZE ? rest
                                                                               : sizeof(guest) - XP_PAGE_SIZE);
    }

    static int vol_dummy;
    struct vbd_params p = { .name = "vbd 1/51712", .domid = GUEST, .vol = (struct volume *)&vol_dummy,
                            .readonly = flags & 2, .max_indirect = (flags & 4) ? 0 : 256,
                            .fatal = on_fatal, .arg = NULL };
    fatal_called = false;
    npend = 0;
    struct vbd *v = vbd_new(el, (struct xp *)&vol_dummy, &p);
    char err[128];
    uint32_t ref = 1;
    CHECK(vbd_add_queue(v, (flags & 1) ? BLKIF_ABI_X86_32 : BLKIF_ABI_X86_64, &ref, 1, 3, err,
                        sizeof(err)) == 0);
    vbd_start(v);       /* blkdev.c starts the queues once Connected is written */
    /* Completions (last first) may let more requests in, and a ring may be served a
     * budget per loop turn: run until two turns change nothing.  The loop also runs the
     * fatal callback, if the ring was corrupt. */
    struct vbd_counters c;
    uint64_t last = UINT64_MAX;
    for (int turn = 0, idle = 0; turn < 4096 && idle < 2; turn++) {
        while (npend) {
            struct pending pd = pend[--npend];
            pd.cb(pd.arg, 0);
        }
        evloop_run_once(el, 0);
        vbd_get_counters(v, &c);
        idle = c.requests == last && !npend ? idle + 1 : 0;
        last = c.requests;
    }

    /* Every request taken was answered: rsp_prod caught up with req_cons. */
    uint32_t rsp_prod;
    memcpy(&rsp_prod, ring_page + 8, 4);
    CHECK(rsp_prod == (uint32_t)c.requests);
    CHECK(vbd_stop(v, on_drained, NULL));
    vbd_free(v);
    free(ring_page);
    return 0;
}
