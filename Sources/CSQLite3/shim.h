/*
 * libsqlite3 from Debian's libsqlite3-dev, for RampartService's SQLite engine. Called
 * directly, one transaction at a time on the calling thread: sqlite-nio's thread pool
 * and per-row event-loop hops cost more than the statements themselves.
 */
#include <sqlite3.h>

/* SQLITE_TRANSIENT is a cast macro Swift cannot import: sqlite copies bound values. */
static inline void (*rampart_sqlite_transient(void))(void *) { return (void (*)(void *))-1; }
