"""The lab without a screen: what a lab shows and how it trains, with no Textual in sight.

    session = LabSession(Settings(cell="rnn"))   # owns settings, pause, pace, compare, generation
    session.start()                              # the training process
    session.toggle_clip()                        # a verb: live or fresh run, decided here once
    session.poll()                               # fold the worker's updates into session.history

`protocol` holds the typed messages between the session and the training process (`worker`);
`history` the bounded histories the charts draw; `status` the status line's fields; `modes` the
lesson lab modes (train, worked, map) as typed specs. `tutor.ui` renders all of it.
"""
