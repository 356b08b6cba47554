/*
 * Docker's json-file log format, written by berth-shim (docs/shim-protocol.md):
 * one object per line, {"log":"...","stream":"stdout"|"stderr","time":"...Z"}.
 */
#ifndef BERTH_JSONLOG_H
#define BERTH_JSONLOG_H

#include <stddef.h>

/* A line longer than this is cut into partial lines of this size (Docker's limit). */
#define JSONLOG_LINE_MAX 16384

struct jsonlog {
  int fd; /* -1: no log, feeding is a no-op */
  char line[2][JSONLOG_LINE_MAX];
  size_t len[2];
  /* Rotation (Docker's max-size/max-file): 0 = the file grows without bound. */
  long long max_size;
  int max_files;   /* >= 1: the file plus max_files - 1 rotated ones (<path>.1 newest) */
  long long size;  /* bytes in the current file */
  const char *path;
};

/*
 * Opens path for appending (created 0640); returns 0 or -1 with errno. Set max_size and
 * max_files before: a record that would take a non-empty file past max_size first rotates
 * the files (max_files > 1) or truncates the file (max_files 1).
 */
int jsonlog_open(struct jsonlog *l, const char *path);
/* Feeds bytes of stream 0 (stdout) or 1 (stderr): complete lines are written at once. */
void jsonlog_feed(struct jsonlog *l, int stream, const char *p, size_t n);
/* Writes the partial line a stream holds (at its end). */
void jsonlog_flush(struct jsonlog *l, int stream);
/*
 * Escapes n bytes as the inside of a JSON string into out (room for 6 * n bytes needed).
 * Invalid UTF-8 bytes become U+FFFD, one per byte. Returns the length written.
 */
size_t json_escape(const unsigned char *p, size_t n, char *out);

#endif
