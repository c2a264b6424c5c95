"""The demo city of Chongqing central urban area: city builder, incident history and live simulator."""
