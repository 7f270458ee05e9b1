//go:build linux && cgo

package sqldb

/*
#include <malloc.h>

static int limit_arenas(int n) {
#ifdef M_ARENA_MAX
	return mallopt(M_ARENA_MAX, n);
#else
	return 0;
#endif
}
*/
import "C"

// LimitMallocArenas caps the C allocator's arenas at n for the rest of the
// process (glibc's mallopt(M_ARENA_MAX), as MALLOC_ARENA_MAX does at
// start), and reports whether the allocator took it. SQLite allocates from
// whichever thread runs it, and glibc gives each thread an arena of its
// own, up to eight per core: pages freed in one are not reused by
// another, so a long-running process's C memory creeps up far past what
// SQLite holds. A process setting: main calls it, before the stores open.
func LimitMallocArenas(n int) bool {
	return C.limit_arenas(C.int(n)) == 1
}
