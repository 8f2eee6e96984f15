"""The minimal Temporal unit of bench/drain.py: one workflow running one activity, on an
SDK worker with its defaults (its own module, so the workflow sandbox can import it).

    .venv/bin/python bench/minimal.py ADDRESS     (bench/drain.py starts it)
"""

from __future__ import annotations

import asyncio
import signal
import sys
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

QUEUE = "bench-minimal"


@activity.defn(name="bench_noop")
async def bench_noop(item: str) -> str:
    return item


@workflow.defn(name="BenchMinimal")
class BenchMinimal:
    @workflow.run
    async def run(self, item: str) -> str:
        return await workflow.execute_activity(
            bench_noop, item, start_to_close_timeout=timedelta(seconds=30)
        )


async def main(address: str, queue: str) -> None:
    client = await Client.connect(address)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with Worker(client, task_queue=queue, workflows=[BenchMinimal], activities=[bench_noop]):
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else QUEUE))
