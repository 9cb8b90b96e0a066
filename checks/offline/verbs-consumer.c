/* A program linked against an rdma-core: lists the verbs devices and opens each (which
 * makes libibverbs load the provider of its driver), printing what it opened. */
#include <stdio.h>
#include <infiniband/verbs.h>

int main(void)
{
	int n = 0, opened = 0;
	struct ibv_device **list = ibv_get_device_list(&n);

	if (!list) {
		perror("ibv_get_device_list");
		return 1;
	}
	for (int i = 0; i < n; i++) {
		struct ibv_context *ctx = ibv_open_device(list[i]);

		if (!ctx) {
			fprintf(stderr, "cannot open %s\n", ibv_get_device_name(list[i]));
			continue;
		}
		printf("opened %s\n", ibv_get_device_name(list[i]));
		ibv_close_device(ctx);
		opened++;
	}
	ibv_free_device_list(list);
	return opened > 0 ? 0 : 1;
}
