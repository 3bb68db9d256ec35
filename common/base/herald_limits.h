/* herald_limits.h - the bounds of the notification model that every layer shares (protocol.md 2,
 * 3). */
#ifndef HERALD_LIMITS_H
#define HERALD_LIMITS_H

#define HERALD_MAX_ID_LEN      64 /* message_id, user_id */
#define HERALD_MAX_SOURCE_LEN  32
#define HERALD_MAX_NOTIF_BYTES (64 * 1024) /* encoded notification bound */
#define HERALD_PRIORITIES      4
#define HERALD_BROADCAST_USER  "*"

#endif
