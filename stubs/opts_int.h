/* opts_int.h (private): the mark bt_channel_opts_init and
 * bt_server_opts_init leave in the options they set up, which
 * bt_channel_new and bt_server_new check: a zeroed struct is refused rather
 * than read as "no limits, no verification". */
#ifndef BT_OPTS_INT_H
#define BT_OPTS_INT_H

#define BT__OPTS_INITIALIZED 0x6274u /* "bt" */

#endif
