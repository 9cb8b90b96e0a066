#include <linux/module.h>
#include <linux/init.h>
static int __init hello_init(void) { pr_info("rdma-nix hello\n"); return 0; }
static void __exit hello_exit(void) { }
module_init(hello_init);
module_exit(hello_exit);
MODULE_LICENSE("GPL");
