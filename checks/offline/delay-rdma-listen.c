/* LD_PRELOAD shim for checks/offline/perftest-cm-race.nix: the second rdma_listen()
 * of a process (perftest's listener for the test connection; the first is its
 * communication connection's) waits a second first, as a slow server would. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <unistd.h>

struct rdma_cm_id;

int rdma_listen(struct rdma_cm_id *id, int backlog)
{
	static int (*real)(struct rdma_cm_id *, int);
	static int calls;

	if (!real)
		real = (int (*)(struct rdma_cm_id *, int))dlsym(RTLD_NEXT, "rdma_listen");
	if (++calls == 2)
		sleep(1);
	return real(id, backlog);
}
