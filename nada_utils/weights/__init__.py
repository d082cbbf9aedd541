"""Getting and reading weight files: which exist (`registry`), checksummed atomic downloads
(`download`), restricted unpicklers that never run a file's code (`safe_pickle`), and NVlabs' layouts
translated to ours (`formats`). No networks are built here.

May import: helpers
"""
