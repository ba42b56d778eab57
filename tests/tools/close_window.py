"""Asks the X window titled ARGV[1] to close, as a window manager's close button does: a
WM_DELETE_WINDOW message (Xvfb runs no window manager). Uses $DISPLAY and $XAUTHORITY.
Prints how many windows were asked; exits 1 when none has that title.
"""

import sys

from Xlib import X, display, protocol


def windows(window):
    yield window
    try:
        children = window.query_tree().children
    except Exception:
        # Gone while it was looked at.
        return
    for child in children:
        yield from windows(child)


def main():
    title = sys.argv[1]
    screen = display.Display()
    protocols = screen.intern_atom("WM_PROTOCOLS")
    delete = screen.intern_atom("WM_DELETE_WINDOW")
    asked = 0
    for window in windows(screen.screen().root):
        try:
            if window.get_wm_name() != title or delete not in (window.get_wm_protocols() or []):
                continue
        except Exception:
            continue
        message = protocol.event.ClientMessage(
            window=window, client_type=protocols, data=(32, [delete, X.CurrentTime, 0, 0, 0])
        )
        window.send_event(message, event_mask=X.NoEventMask)
        asked += 1
    screen.flush()
    print(asked)
    sys.exit(0 if asked else 1)


main()
