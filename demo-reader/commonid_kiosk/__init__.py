"""The kiosk agent: owns the PC/SC reader and serves the kiosk page."""
