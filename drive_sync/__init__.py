"""Google Drive mounting and mirroring for Colab runs (planned; see the drive_sync issue)."""
