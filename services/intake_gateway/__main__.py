import uvicorn

from services.intake_gateway.bootstrap import build
from services.intake_gateway.settings import GatewaySettings
from services.runtime.json_logs import configure_logging


def main() -> None:
    configure_logging("intake_gateway")
    settings = GatewaySettings()
    # no access log: webhook URLs and bodies must not put phone numbers into logs
    uvicorn.run(
        build(settings), host=settings.gateway_host, port=settings.gateway_port, access_log=False, log_config=None
    )


if __name__ == "__main__":
    main()
