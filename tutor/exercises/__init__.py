"""Exercises: the learner writes the forward and backward steps, the tutor checks them.

`workspace` makes the folder of numbered files, `check` runs one in a limited child process
(`runner`, `_child`) and compares it with the engine (`tutor.engine.reference`), `record` keeps
the results, `command` is `rnn-tutor exercises`. No Textual here; the screen is
`tutor.ui.exercises_screen`. Importing this package loads nothing heavy."""
