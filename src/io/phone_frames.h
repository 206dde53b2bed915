/* phone_frames.h - the phone adapter's translation between frames and the phone core
 * (phone/phone.h): the core's server actions as proto_msg frames, the server's frames
 * and the se's IC_I/F link frames as calls into the core. No I/O: phone_net.c reads and
 * writes the bytes. Not for other adapters. */
#ifndef TB_IO_PHONE_FRAMES_H
#define TB_IO_PHONE_FRAMES_H

#include <stddef.h>
#include <stdint.h>

#include "phone/phone.h"
#include "server/proto.h"

/* Scratch for one frame: the message, and the core's views of a MENU's or a HISTORY's
 * records (they point into the frame's bytes: valid while the frame is). */
struct pn_frame_buf {
	struct proto_msg msg;
	struct ph_menu_item items[PROTO_MENU_MAX];
	struct ph_hist_rec recs[PROTO_HISTORY_MAX];
};

/* The core's action a as the frame for the server, into m (zeroed first; it points into
 * a): 1, or 0 when a is not for the server (an se link action, CLOSE, NONE). serial: the
 * phone's, for HELLO. */
int pn_act_msg(const struct ph_act *a, const uint8_t serial[PH_SERIAL_LEN], struct proto_msg *m);

/* The server's frame (type, p, len) decoded into b and handed to the core; now: when it
 * arrived (ms, a PONG's round trip ends there). A frame that does not decode ends the
 * session (ph_srv_closed) with the reason written to why. The core's return. */
int pn_srv_in(struct ph *ph, struct pn_frame_buf *b, uint8_t type, const uint8_t *p, size_t len,
	      uint64_t now, char *why, size_t whylen);

/* The se's link frame (type, p, len) handed to the core. A malformed one ends the se
 * link in the core (ph_se_closed) and sets *bad: the caller closes the link. The core's
 * return. */
int pn_se_in(struct ph *ph, uint8_t type, const uint8_t *p, size_t len, int *bad);

#endif
