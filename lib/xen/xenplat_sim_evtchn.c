/* xenplat_sim_evtchn.c — the sim platform's event channels (xenplat_sim_impl.h).
 *
 * A port is a Unix datagram socket DIR/evtchn/<dom>-<port>.sock with a
 * metadata file <dom>-<port>.info ("unbound <remote-dom>" or "bound
 * <remote-dom> <remote-port>").  Binding to an unbound port creates
 * <rdom>-<rport>.peer naming the binder (O_EXCL: a port binds once), which is
 * how the allocating side learns its peer.  A notify is one datagram; a full
 * socket buffer means the event is already pending.  All ports of an xp sit in
 * one epoll fd (the pollable handle), edge-triggered: each datagram that
 * arrives reports its port once.  Masking is a flag here, not an epoll
 * re-arm, so the common path costs no epoll_ctl: reporting a port sets
 * masked (Xen's mask-on-delivery) and drains its socket with one recvmmsg;
 * unmask clears the flag.  An edge that arrives while masked is left in the
 * socket and remembered (held); unmask then re-arms the port with
 * EPOLL_CTL_MOD, which re-checks readiness, so the event fires after unmask
 * as Xen's would.  A spurious edge (its datagram was drained with an earlier
 * one) finds an empty socket and is not reported.
 */
#include "xenplat_sim_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"

#define EVT_MAX_PORT     65535u

struct port {
    uint32_t port;
    int fd;
    bool masked;                /* reported and not unmasked yet */
    bool held;                  /* an edge came while masked: re-arm on unmask */
    bool have_peer;
    struct sockaddr_un peer;
    struct port *next;
};

static int evt_path(const struct sim *s, char *buf, size_t len, uint16_t dom, uint32_t port, const char *ext)
{
    int n = snprintf(buf, len, "%s/evtchn/%u-%u.%s", s->dir, dom, port, ext);
    if (n < 0 || (size_t)n >= len) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

static int evt_sockaddr(const struct sim *s, struct sockaddr_un *sa, uint16_t dom, uint32_t port)
{
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    return evt_path(s, sa->sun_path, sizeof(sa->sun_path), dom, port, "sock");
}

static int write_file_excl(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, text, strlen(text));
    close(fd);
    if (n != (ssize_t)strlen(text)) {
        unlink(path);
        errno = EIO;
        return -1;
    }
    return 0;
}

static int read_small(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, len - 1);
    close(fd);
    if (n < 0)
        return -1;
    buf[n] = '\0';
    return 0;
}

static struct port *port_find(struct sim *s, uint32_t port)
{
    for (struct port *p = s->ports; p; p = p->next)
        if (p->port == port)
            return p;
    return NULL;
}

static void port_files_rm(const struct sim *s, uint16_t dom, uint32_t port)
{
    char path[PATH_MAX];
    static const char *const ext[] = { "sock", "peer", "info" };
    for (unsigned i = 0; i < 3; i++)
        if (evt_path(s, path, sizeof(path), dom, port, ext[i]) == 0)
            unlink(path);
}

/* Allocates a port number (claiming its .info file with info) and binds its
 * socket; returns the new port, registered in the epoll set. */
static struct port *port_new(struct xp *xp, const char *info)
{
    struct sim *s = S_(xp);
    char path[PATH_MAX];
    uint32_t num = 0;
    for (uint32_t n = 1; n <= EVT_MAX_PORT && !num; n++) {
        if (evt_path(s, path, sizeof(path), xp->domid, n, "info") < 0)
            return NULL;
        if (write_file_excl(path, info) == 0)
            num = n;
        else if (errno != EEXIST)
            return NULL;
    }
    if (!num) {
        errno = ENOSPC;
        return NULL;
    }
    struct port *p = calloc(1, sizeof(*p));
    struct sockaddr_un sa;
    if (!p)
        goto fail;
    p->fd = -1;
    if (evt_sockaddr(s, &sa, xp->domid, num) < 0)
        goto fail;
    unlink(sa.sun_path);        /* left by a process that died holding this number */
    p->port = num;
    p->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (p->fd < 0)
        goto fail;
    struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.u32 = num };
    if (bind(p->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || epoll_ctl(s->epfd, EPOLL_CTL_ADD, p->fd, &ev) < 0)
        goto fail;
    p->next = s->ports;
    s->ports = p;
    return p;
fail:;
    int e = errno;
    if (p && p->fd >= 0)
        close(p->fd);
    free(p);
    port_files_rm(s, xp->domid, num);
    errno = e;
    return NULL;
}

static void port_free(struct xp *xp, struct port *p)
{
    struct sim *s = S_(xp);
    char path[PATH_MAX], info[64];
    unsigned rdom, rport;
    epoll_ctl(s->epfd, EPOLL_CTL_DEL, p->fd, NULL);
    close(p->fd);
    /* Closing a bound end leaves the remote port unbound again (as on Xen),
     * so its allocator may be bound anew. */
    if (evt_path(s, path, sizeof(path), xp->domid, p->port, "info") == 0 &&
        read_small(path, info, sizeof(info)) == 0 &&
        sscanf(info, "bound %u %u", &rdom, &rport) == 2 &&
        evt_path(s, path, sizeof(path), (uint16_t)rdom, rport, "peer") == 0)
        unlink(path);
    port_files_rm(s, xp->domid, p->port);
    free(p);
}

int xp_sim_evtchn_fd(struct xp *xp)
{
    return S_(xp)->epfd;
}

int xp_sim_evtchn_alloc_unbound(struct xp *xp, uint16_t domid)
{
    char info[32];
    snprintf(info, sizeof(info), "unbound %u\n", domid);
    struct port *p = port_new(xp, info);
    return p ? (int)p->port : -1;
}

/* Whether the binder named by a .peer file is gone: its process died
 * without unbinding (kill -9), so its socket refuses datagrams.  Xen closes a
 * dead process's bindings with its event-channel fd; here the next binder
 * (a restarted backend) clears them. */
static bool peer_dead(const struct sim *s, const char *peer_path)
{
    char peer[32];
    unsigned dom, port;
    struct sockaddr_un sa;
    if (read_small(peer_path, peer, sizeof(peer)) < 0 || sscanf(peer, "%u %u", &dom, &port) != 2 ||
        evt_sockaddr(s, &sa, (uint16_t)dom, port) < 0)
        return false;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    int rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    int e = errno;
    close(fd);
    return rc < 0 && (e == ECONNREFUSED || e == ENOENT);
}

int xp_sim_evtchn_bind_interdomain(struct xp *xp, uint16_t domid, uint32_t remote_port)
{
    struct sim *s = S_(xp);
    char path[PATH_MAX], info[64];
    unsigned want;
    if (remote_port == 0 || remote_port > EVT_MAX_PORT ||
        evt_path(s, path, sizeof(path), domid, remote_port, "info") < 0 ||
        read_small(path, info, sizeof(info)) < 0 ||
        sscanf(info, "unbound %u", &want) != 1 || want != xp->domid) {
        mx_debug("sim evtchn: dom%u cannot bind port %u of dom%u", xp->domid, remote_port, domid);
        errno = EINVAL;
        return -1;
    }
    snprintf(info, sizeof(info), "bound %u %u\n", domid, remote_port);
    struct port *p = port_new(xp, info);
    if (!p)
        return -1;
    if (evt_sockaddr(s, &p->peer, domid, remote_port) == 0)
        p->have_peer = true;
    /* Tell the remote end who its peer is; O_EXCL makes the binding unique. */
    char peer[32];
    snprintf(peer, sizeof(peer), "%u %u\n", xp->domid, p->port);
    int wrc = evt_path(s, path, sizeof(path), domid, remote_port, "peer") < 0 ? -1 : write_file_excl(path, peer);
    if (wrc < 0 && errno == EEXIST && peer_dead(s, path)) {
        mx_debug("sim evtchn: dom%u port %u: its binder died; binding again", domid, remote_port);
        unlink(path);
        wrc = write_file_excl(path, peer);
    }
    if (wrc < 0) {
        int e = errno == EEXIST ? EBUSY : errno;
        s->ports = p->next;
        /* Our .info must not make port_free unlink the other binder's .peer. */
        epoll_ctl(s->epfd, EPOLL_CTL_DEL, p->fd, NULL);
        close(p->fd);
        port_files_rm(s, xp->domid, p->port);
        free(p);
        errno = e;
        return -1;
    }
    return (int)p->port;
}

int xp_sim_evtchn_unbind(struct xp *xp, uint32_t port)
{
    struct sim *s = S_(xp);
    for (struct port **pp = &s->ports; *pp; pp = &(*pp)->next)
        if ((*pp)->port == port) {
            struct port *p = *pp;
            *pp = p->next;
            port_free(xp, p);
            return 0;
        }
    errno = EINVAL;
    return -1;
}

int xp_sim_evtchn_notify(struct xp *xp, uint32_t port)
{
    struct sim *s = S_(xp);
    struct port *p = port_find(s, port);
    if (!p) {
        errno = EINVAL;
        return -1;
    }
    /* Twice at most: a peer that went away may have been replaced by a new
     * binder (a restarted or re-exec'd backend) whose .peer we read anew,
     * since Xen delivers a send to whoever holds the binding now; losing it
     * would leave a guest waiting for a backend that never heard of its
     * requests. */
    for (int tries = 0; tries < 2; tries++) {
        if (!p->have_peer) {
            char path[PATH_MAX], peer[32];
            unsigned dom, rport;
            if (evt_path(s, path, sizeof(path), xp->domid, port, "peer") < 0 ||
                read_small(path, peer, sizeof(peer)) < 0 || sscanf(peer, "%u %u", &dom, &rport) != 2)
                return 0;       /* still unbound: Xen drops the event silently */
            if (evt_sockaddr(s, &p->peer, (uint16_t)dom, rport) < 0)
                return 0;
            p->have_peer = true;
        }
        char b = 1;
        if (sendto(p->fd, &b, 1, MSG_DONTWAIT, (struct sockaddr *)&p->peer, sizeof(p->peer)) >= 0 ||
            (errno != ECONNREFUSED && errno != ENOENT))
            return 0;           /* EAGAIN/ENOBUFS: the peer's queue is full, so the event is pending */
        /* The peer went away; it may be re-bound by someone else. */
        mx_debug("sim evtchn: dom%u port %u: peer gone", xp->domid, port);
        p->have_peer = false;
    }
    return 0;
}

/* Empties a port's socket; returns the number of datagrams taken. */
static unsigned drain(struct port *p)
{
    enum { BATCH = 32 };
    char buf[BATCH];
    struct iovec iov[BATCH];
    struct mmsghdr msg[BATCH];
    unsigned total = 0;
    for (;;) {
        for (unsigned i = 0; i < BATCH; i++) {
            iov[i] = (struct iovec){ .iov_base = &buf[i], .iov_len = 1 };
            msg[i] = (struct mmsghdr){ .msg_hdr = { .msg_iov = &iov[i], .msg_iovlen = 1 } };
        }
        int n = recvmmsg(p->fd, msg, BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0)
            return total;
        total += (unsigned)n;
        if (n < BATCH)
            return total;
    }
}

int xp_sim_evtchn_pending(struct xp *xp)
{
    struct sim *s = S_(xp);
    for (;;) {
        while (s->nready) {
            struct port *p = port_find(s, s->ready[--s->nready]);
            if (!p)
                continue;               /* unbound since */
            if (p->masked) {
                p->held = true;         /* its datagram stays queued until unmask */
                continue;
            }
            if (!drain(p))
                continue;               /* spurious: drained with an earlier edge */
            p->masked = true;
            return (int)p->port;
        }
        if (s->idle) {
            s->idle = false;
            errno = EAGAIN;
            return -1;
        }
        struct epoll_event ev[SIM_MAXEV];
        int n = epoll_wait(s->epfd, ev, SIM_MAXEV, 0);
        if (n <= 0) {
            if (n == 0)
                errno = EAGAIN;
            return -1;
        }
        /* Edge-triggered: every port reported now must be looked at, so
         * they are queued here and handed out one per call. */
        for (int k = 0; k < n; k++)
            s->ready[s->nready++] = ev[k].data.u32;
        s->idle = n < SIM_MAXEV;
    }
}

int xp_sim_evtchn_unmask(struct xp *xp, uint32_t port)
{
    struct sim *s = S_(xp);
    struct port *p = port_find(s, port);
    if (!p) {
        errno = EINVAL;
        return -1;
    }
    p->masked = false;
    if (!p->held)
        return 0;
    p->held = false;
    s->idle = false;
    /* MOD re-evaluates readiness: a datagram queued while masked fires now. */
    struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.u32 = port };
    return epoll_ctl(s->epfd, EPOLL_CTL_MOD, p->fd, &ev);
}

int xp_sim_evtchn_open(struct sim *s, const char *dir)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/evtchn", dir);
    if (mkdir(path, 0700) < 0 && errno != EEXIST)
        return -1;
    return (s->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 ? -1 : 0;
}

void xp_sim_evtchn_close(struct xp *xp)
{
    struct sim *s = S_(xp);
    while (s->ports) {
        struct port *p = s->ports;
        s->ports = p->next;
        port_free(xp, p);
    }
    if (s->epfd >= 0)
        close(s->epfd);
    s->epfd = -1;
}
