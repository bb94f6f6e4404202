"""The local stack: moto, the gateway emulator and what turns them into one running Tether."""
