/* xenbus.h — helpers of the XenBus side of memx-backd (xenbus.c implements
 * blkback.h: device discovery under backend/<type>, the blkif state machine
 * of xen/include/public/io/blkif.h, feature negotiation).
 *
 * Per device, the backend moves InitWait (features published) -> Connected
 * (rings mapped, volume attached) -> Closed (drained, unmapped, detached),
 * and back to InitWait when a frontend that saw Closed starts again.  Every
 * transition is recomputed from XenStore on each watch event, so repeated or
 * coalesced events are harmless (connect and disconnect are idempotent).
 */
#ifndef MEMX_XENBUS_H
#define MEMX_XENBUS_H

#include <stdint.h>

#include <xen/io/xenbus.h>

/* "Initialising", "InitWait", ... ("Unknown" for anything else). */
const char *xenbus_state_name(int state);

/* Parses a XenStore integer node value; -1 if it is not a decimal number in
 * [0, max]. */
long long xenbus_parse_uint(const char *s, unsigned long long max);

#endif
