/* ports.h — local event-channel port -> owner, for every device sharing one
 * platform handle (one event-channel fd).
 *
 * When the fd says "port P fired", the dataplane finds P's ring by index
 * instead of searching every device and queue.  Ports are small integers
 * handed out densely by the event-channel driver, so a flat array grown to
 * the largest port bound is both the fastest and the smallest structure.
 * Growing it allocates: that happens at set-up (binding a queue), never when
 * an event fires.
 */
#ifndef MEMX_PORTS_H
#define MEMX_PORTS_H

struct port_table;

struct port_table *port_table_new(void);
void  port_table_free(struct port_table *pt);
/* owner for port; 0, or -1 (out of memory: the caller refuses the queue).
 * A NULL table accepts and forgets everything. */
int   port_table_set(struct port_table *pt, int port, void *owner);
void  port_table_clear(struct port_table *pt, int port);
/* The owner of port, NULL if none (e.g. a late event of a channel just unbound). */
void *port_table_get(const struct port_table *pt, int port);

#endif
