/* ports.c — local event-channel port -> owner (see ports.h). */
#include "ports.h"

#include <string.h>

#include "xalloc.h"

struct port_table {
    void **owner;               /* indexed by local port; NULL where none */
    unsigned n;
};

struct port_table *port_table_new(void) { return xcalloc(1, sizeof(struct port_table)); }

void port_table_free(struct port_table *pt)
{
    if (pt)
        free(pt->owner);
    free(pt);
}

int port_table_set(struct port_table *pt, int port, void *owner)
{
    if (!pt || port < 0)
        return 0;
    if ((unsigned)port >= pt->n) {
        unsigned n = pt->n ? pt->n : 64;
        while (n <= (unsigned)port)
            n *= 2;
        void **t = xreallocarray(pt->owner, n, sizeof(*t));
        if (!t)
            return -1;
        memset(t + pt->n, 0, (n - pt->n) * sizeof(*t));
        pt->owner = t;
        pt->n = n;
    }
    pt->owner[port] = owner;
    return 0;
}

void port_table_clear(struct port_table *pt, int port)
{
    if (pt && port >= 0 && (unsigned)port < pt->n)
        pt->owner[port] = NULL;
}

void *port_table_get(const struct port_table *pt, int port)
{
    return pt && port >= 0 && (unsigned)port < pt->n ? pt->owner[port] : NULL;
}
