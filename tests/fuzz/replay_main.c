/* replay_main.c: a main for the fuzz targets without libFuzzer.
 *
 * Runs LLVMFuzzerTestOneInput once over every file named on the command line
 * and every regular file in the directories named there, so the seed corpora
 * and past crashes are regression tests in every build. Fails when it finds
 * no input at all, so a wrong corpus path cannot pass silently. */
#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    perror(path);
    return -1;
  }
  size_t cap = 4096, len = 0;
  uint8_t *buf = malloc(cap);
  size_t n;
  while (buf && (n = fread(buf + len, 1, cap - len, f)) > 0) {
    len += n;
    if (len == cap) {
      cap *= 2;
      uint8_t *grown = realloc(buf, cap);
      if (!grown)
        free(buf);
      buf = grown;
    }
  }
  fclose(f);
  if (!buf) {
    fprintf(stderr, "%s: out of memory\n", path);
    return -1;
  }
  /* an exact-size copy, so ASan sees reads past the input's end */
  uint8_t *exact = malloc(len ? len : 1);
  if (!exact) {
    free(buf);
    return -1;
  }
  memcpy(exact, buf, len);
  free(buf);
  LLVMFuzzerTestOneInput(exact, len);
  free(exact);
  return 0;
}

/* Returns the number of inputs run, or -1 on an unreadable path. */
static long run_path(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0) {
    perror(path);
    return -1;
  }
  if (!S_ISDIR(st.st_mode))
    return run_file(path) == 0 ? 1 : -1;
  DIR *dir = opendir(path);
  if (!dir) {
    perror(path);
    return -1;
  }
  long count = 0;
  struct dirent *e;
  while ((e = readdir(dir)) != NULL) {
    if (e->d_name[0] == '.')
      continue;
    char child[4096];
    snprintf(child, sizeof(child), "%s/%s", path, e->d_name);
    if (stat(child, &st) != 0 || !S_ISREG(st.st_mode))
      continue;
    if (run_file(child) != 0) {
      closedir(dir);
      return -1;
    }
    count++;
  }
  closedir(dir);
  return count;
}

int main(int argc, char **argv) {
  long total = 0;
  for (int i = 1; i < argc; i++) {
    long n = run_path(argv[i]);
    if (n < 0)
      return 1;
    total += n;
  }
  printf("replayed %ld inputs\n", total);
  if (total == 0) {
    fprintf(stderr, "no inputs found\n");
    return 1;
  }
  return 0;
}
