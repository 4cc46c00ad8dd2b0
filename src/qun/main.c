/* SPDX-License-Identifier: MIT */
/* placeholder replaced by the CLI */
#include <stdio.h>
int main(void) { puts("qun"); return 0; }
