#define _GNU_SOURCE
#include "jsonlog.h"

#include "../common/util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int jsonlog_open(struct jsonlog *l, const char *path) {
  struct stat st;
  l->len[0] = l->len[1] = 0;
  l->path = path;
  if (l->max_files < 1) l->max_files = 1;
  l->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (l->fd < 0) return -1;
  l->size = fstat(l->fd, &st) == 0 ? st.st_size : 0;
  return 0;
}

/*
 * Makes room for a record: <path>.{N-2} -> <path>.{N-1} ... <path> -> <path>.1 and a new
 * <path>; with one file, truncates it. On failure the record still goes to the open fd
 * (the log may then pass max_size, the container never notices); returns 0 or -1 with e.
 */
static int rotate(struct jsonlog *l, struct berr *e) {
  char from[4096], to[4096];
  if (l->max_files <= 1) {
    if (ftruncate(l->fd, 0) < 0) return BERR_SYS(e, "ftruncate", l->path);
    l->size = 0;
    return 0;
  }
  for (int i = l->max_files - 1; i >= 1; i--) {
    if (i > 1) snprintf(from, sizeof from, "%s.%d", l->path, i - 1);
    else snprintf(from, sizeof from, "%s", l->path);
    snprintf(to, sizeof to, "%s.%d", l->path, i);
    if (rename(from, to) < 0 && errno != ENOENT) return BERR_SYS(e, "rename", from);
  }
  int fd = open(l->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) return BERR_SYS(e, "open", l->path);
  close(l->fd);
  l->fd = fd;
  l->size = 0;
  return 0;
}

/* Length of the valid UTF-8 sequence at p (1-4), or 0 when the bytes there are not one. */
static size_t utf8_len(const unsigned char *p, size_t n) {
  unsigned char c = p[0];
  size_t len;
  uint32_t cp;
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf) len = 2, cp = c & 0x1f;
  else if (c >= 0xe0 && c <= 0xef) len = 3, cp = c & 0x0f;
  else if (c >= 0xf0 && c <= 0xf4) len = 4, cp = c & 0x07;
  else return 0;
  if (n < len) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((p[i] & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (p[i] & 0x3f);
  }
  /* Overlong forms, surrogates and code points past U+10FFFF are not UTF-8. */
  if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  return len;
}

size_t json_escape(const unsigned char *p, size_t n, char *out) {
  static const char hex[] = "0123456789abcdef";
  char *o = out;
  size_t i = 0;
  while (i < n) {
    unsigned char c = p[i];
    if (c >= 0x80) {
      size_t len = utf8_len(p + i, n - i);
      if (len == 0) {
        memcpy(o, "\\ufffd", 6);
        o += 6;
        i++;
      } else {
        memcpy(o, p + i, len);
        o += len;
        i += len;
      }
      continue;
    }
    i++;
    switch (c) {
      case '"': *o++ = '\\'; *o++ = '"'; break;
      case '\\': *o++ = '\\'; *o++ = '\\'; break;
      case '\n': *o++ = '\\'; *o++ = 'n'; break;
      case '\r': *o++ = '\\'; *o++ = 'r'; break;
      case '\t': *o++ = '\\'; *o++ = 't'; break;
      case '\b': *o++ = '\\'; *o++ = 'b'; break;
      case '\f': *o++ = '\\'; *o++ = 'f'; break;
      default:
        if (c < 0x20) {
          memcpy(o, "\\u00", 4);
          o[4] = hex[c >> 4];
          o[5] = hex[c & 15];
          o += 6;
        } else {
          *o++ = (char)c;
        }
    }
  }
  return (size_t)(o - out);
}

static void write_line(struct jsonlog *l, int stream, const char *p, size_t n) {
  static char out[JSONLOG_LINE_MAX * 6 + 128];
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  size_t len = 0;
  memcpy(out, "{\"log\":\"", 8);
  len = 8 + json_escape((const unsigned char *)p, n, out + 8);
  len += (size_t)snprintf(out + len, sizeof out - len,
                          "\",\"stream\":\"%s\",\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ\"}\n",
                          stream ? "stderr" : "stdout", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                          tm.tm_min, tm.tm_sec, ts.tv_nsec);
  if (l->max_size > 0 && l->size > 0 && l->size + (long long)len > l->max_size) {
    struct berr e;
    /* A failed rotation keeps writing to the file as it is (see rotate). */
    (void)rotate(l, &e);
  }
  /* A full disk loses log lines, never the container. */
  if (write_all(l->fd, out, len) == 0) l->size += (long long)len;
}

void jsonlog_feed(struct jsonlog *l, int stream, const char *p, size_t n) {
  if (l->fd < 0) return;
  while (n > 0) {
    const char *nl = memchr(p, '\n', n);
    size_t take = nl ? (size_t)(nl - p) + 1 : n;
    size_t room = JSONLOG_LINE_MAX - l->len[stream];
    if (take > room) take = room;
    memcpy(l->line[stream] + l->len[stream], p, take);
    l->len[stream] += take;
    p += take;
    n -= take;
    if (l->line[stream][l->len[stream] - 1] == '\n' || l->len[stream] == JSONLOG_LINE_MAX) {
      write_line(l, stream, l->line[stream], l->len[stream]);
      l->len[stream] = 0;
    }
  }
}

void jsonlog_flush(struct jsonlog *l, int stream) {
  if (l->fd < 0 || l->len[stream] == 0) return;
  write_line(l, stream, l->line[stream], l->len[stream]);
  l->len[stream] = 0;
}
