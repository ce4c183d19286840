#include "daemon/io/off_loop.h"

#include <memory>
#include <string>
#include <utility>

namespace kvd::io {
namespace {

struct Job {
  uv_work_t request;
  std::function<void()> work;
  std::function<void()> after;
};

void OnWork(uv_work_t* request) { static_cast<Job*>(request->data)->work(); }

void OnAfter(uv_work_t* request, int /*status: only UV_ECANCELED, never asked for*/) {
  std::unique_ptr<Job> job(static_cast<Job*>(request->data));
  if (job->after) job->after();
}

}  // namespace

core::Status RunOffLoop(uv_loop_t* loop, std::function<void()> work, std::function<void()> after) {
  auto job = std::make_unique<Job>();
  job->request.data = job.get();
  job->work = std::move(work);
  job->after = std::move(after);
  int rc = uv_queue_work(loop, &job->request, OnWork, OnAfter);
  if (rc < 0) return core::Status::Internal(std::string("uv_queue_work: ") + uv_strerror(rc));
  job.release();  // Owned by the request until OnAfter.
  return core::Status::Ok();
}

}  // namespace kvd::io
