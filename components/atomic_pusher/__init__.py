"""The AtomicPusher component: a Pusher that never leaves a half-copied model in serving."""
