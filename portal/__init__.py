"""The Advanced QR-Code Provisioning portal: create_app and nothing else."""
from flask import Flask

from config import Config


def create_app(config_class=Config) -> Flask:
    app = Flask(__name__, instance_path=str(config_class.INSTANCE_PATH),
                template_folder="../templates", static_folder="../static")
    app.config.from_object(config_class)

    from portal.setup import (configure_secret_key, register_blueprints, register_cli,
                              register_extensions)
    configure_secret_key(app)
    register_extensions(app)
    register_blueprints(app)
    register_cli(app)
    return app
