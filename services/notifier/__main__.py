import asyncio

from services.notifier.entrypoints.stream import serve
from services.notifier.settings import NotifierSettings
from services.runtime.json_logs import configure_logging


def main() -> None:
    configure_logging("notifier")
    asyncio.run(serve(NotifierSettings()))


if __name__ == "__main__":
    main()
