"""The floor of the hot-path benchmark: a bare Flask app returning a fixed JSON body.

Served by gunicorn with the same worker settings as ``waitpoint serve``, so that the
ratio product/floor shows what Waitpoint itself costs. Not part of the product.
"""

from flask import Flask, jsonify

app = Flask(__name__)


@app.route("/", methods=["GET", "POST"])
def fixed():
    return jsonify(id="waitpoint_0000000000000000000000000", isCached=False, url="http://x/")
