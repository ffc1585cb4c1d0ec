/* memd_owners.c — owners/ watch events into the volume store (memd_owners.h). */
#include "memd_owners.h"
#include "ckeys.h"
#include "volstore.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* The volume name of an owners/<name> key, or NULL. */
static const char *owner_name(const char *key)
{
    size_t n = strlen(CK_OWNERS);
    return strncmp(key, CK_OWNERS, n) == 0 && key[n] ? key + n : NULL;
}

int memd_owners_event(struct volstore *vs, enum coord_ev ev, const struct coord_kv *kv, char *why,
                      size_t whylen)
{
    char name[CK_NAME_MAX];
    struct ck_owner o;
    const char *kname;
    switch (ev) {
    case COORD_EV_RESET:
        volstore_etcd_reset(vs);
        return 0;
    case COORD_EV_SYNC:
        volstore_etcd_sync(vs);
        return 0;
    case COORD_EV_DEL:
        if ((kname = owner_name(kv->key)))
            volstore_etcd_del(vs, kname);
        return 0;
    case COORD_EV_PUT:
        break;
    }
    if (ck_owner_decode(kv->key, kv->val, kv->vlen, name, &o, why, whylen)) {
        /* Invariant: an untrusted value never lets anyone write; it only ends what the key said before. */
        if ((kname = owner_name(kv->key)))
            volstore_etcd_del(vs, kname);
        return -1;
    }
    int rc = volstore_etcd_put(vs, name, o.vid, o.epoch, o.node);
    if (rc == ESTALE)
        snprintf(why, whylen, "%s: epoch %llu is below one already seen for that volume", kv->key,
                 (unsigned long long)o.epoch);
    else if (rc)
        snprintf(why, whylen, "%s: out of memory", kv->key);
    return rc ? -1 : 0;
}
