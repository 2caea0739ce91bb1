import asyncio

from services.dispatcher.entrypoints.stream import serve
from services.dispatcher.settings import DispatcherSettings
from services.runtime.json_logs import configure_logging


def main() -> None:
    configure_logging("dispatcher")
    asyncio.run(serve(DispatcherSettings()))


if __name__ == "__main__":
    main()
