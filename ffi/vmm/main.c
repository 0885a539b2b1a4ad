// onebox-vmm entry point: parses the command line (docs/architecture.md) and runs one VM.
#include <stdio.h>
int main(int argc, char **argv) {
  (void)argc; (void)argv;
  fprintf(stderr, "onebox-vmm: not implemented yet\n");
  return 2;
}
