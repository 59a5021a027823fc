/* error.c: names and messages of the BT_ERR_* codes, generated from the one
 * X-macro in <baton/error.h> so they cannot drift from the codes. */
#include <baton/error.h>

const char *bt_strerror(int err) {
  switch (err) {
#define BT_ERR_TEXT_(name, value, text)                                        \
  case value:                                                                  \
    return text;
    BT_ERRNO_MAP(BT_ERR_TEXT_)
#undef BT_ERR_TEXT_
  }
  return "unknown error";
}

const char *bt_err_name(int err) {
  switch (err) {
#define BT_ERR_NAME_(name, value, text)                                        \
  case value:                                                                  \
    return #name;
    BT_ERRNO_MAP(BT_ERR_NAME_)
#undef BT_ERR_NAME_
  }
  return "UNKNOWN";
}
